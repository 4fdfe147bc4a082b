"""Helpers of the serving tests: model versions in the test BentoML store, desired-state
files, and a real `bentoml serve` process on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from modelops.config import Settings
from modelops.io import dump_model
from modelops.schema import ColumnType
from modelops.serving import store
from modelops.serving.bento import bento_name, description, free_port, wait_ready
from modelops.serving.contract import ApiNames, requests_from_frame
from modelops.serving.scorer import reference_values
from modelops.training.lineage import file_md5
from modelops.training.metrics import Scored
from modelops.training.scoring import score
from tests.conftest import PARAMS, REPO

SERVICE = "modelops.serving.service:ModelService"


def save_version(
    settings: Settings, model: Any, train: pd.DataFrame, holdout: pd.DataFrame, folder: Path
) -> str:
    """Save a fitted model in the BentoML store with a minimal lineage record."""
    schema = settings.data_schema
    path = dump_model(model, folder / "model.joblib")
    lineage = minimal_lineage(settings, path, score(model, holdout, schema))
    columns = list(model.feature_names_in_)
    return store.save(settings.model.name, path, lineage, reference_values(train, schema, columns))


def minimal_lineage(settings: Settings, path: Path, scores: Any) -> dict[str, Any]:
    """What serving reads of a model file's lineage record: its id and md5, and the
    decision thresholds its holdout ``scores`` give."""
    digest = file_md5(path)
    return {
        "model_id": f"{settings.model.name}-{digest[:12]}",
        "model": {"md5": digest},
        "code": {"md5": "code"},
        "data": {"raw": {"md5": None}, "train": {"md5": "train"}, "holdout": {"md5": "holdout"}},
        "metrics": {"roc_auc": {"value": 0.5}},
        "decision": {
            "threshold": Scored.at_review_rate(scores, settings.evaluation.review_rate).threshold,
            "decline_threshold": Scored.at_review_rate(
                scores, settings.evaluation.decline_rate
            ).threshold,
        },
    }


def write_state(path: Path, **state: Any) -> Path:
    """Write a desired-state file atomically (the service may be reading it)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(state, sort_keys=False))
    tmp.replace(path)
    return path


def sample_requests(settings: Settings, holdout: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    """``n`` holdout rows as API records."""
    return requests_from_frame(holdout.head(n), settings.data_schema)


def record_ids(settings: Settings, records: list[dict[str, Any]], answers: list[dict]) -> list:
    """The ids the answers should carry: the schema's id column, else the request id."""
    id_column = settings.data_schema.id_column
    if id_column is None:
        return [a["request_id"] for a in answers]
    return [r[id_column] for r in records]


def request_properties(spec: dict[str, Any], path: str) -> set[str]:
    """The JSON fields of an endpoint's request body in an OpenAPI spec."""
    body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    return set(body["schema"]["properties"])


def response_schema(spec: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema of an endpoint's 200 answer in an OpenAPI spec (of its items, for a list)."""
    answer = spec["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
    schema: dict[str, Any] = answer["schema"]
    if schema.get("type") == "array":
        schema = schema["items"]
    if "$ref" in schema:
        return dict(spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    return schema


def assert_spec_follows(spec: dict[str, Any], settings: Settings) -> None:
    """The OpenAPI spec says what the settings say: title and description from model.name
    and words, envelope and id names from words, the record model from the schema."""
    names = ApiNames.from_words(settings.words)
    assert spec["info"]["title"] == bento_name(settings.model)
    assert spec["info"]["description"] == description(settings.words)
    assert {"/predict", "/predict_batch", "/feedback", "/metadata", "/admin/reload"} <= set(
        spec["paths"]
    )
    assert request_properties(spec, "/predict") == {names.record}
    assert request_properties(spec, "/predict_batch") == {names.records}
    assert request_properties(spec, "/feedback") == {"label", "request_id", names.id_field}
    for path in ("/predict", "/predict_batch", "/feedback"):
        assert {"request_id", names.id_field} <= set(response_schema(spec, path)["required"])
    model = spec["components"]["schemas"][names.title]
    assert model["title"] == names.title
    schema = settings.data_schema
    assert set(model["properties"]) == set(schema.columns) - {schema.target}
    assert model["additionalProperties"] is False
    for name, column in schema.columns.items():
        if name == schema.target:
            continue
        prop = model["properties"][name]
        options = prop.get("anyOf", [prop])  # nullable columns: [the type, null]
        if column.min is not None:
            assert column.min in [o.get("minimum") for o in options], name
        if column.max is not None:
            assert column.max in [o.get("maximum") for o in options], name
        if column.type == ColumnType.CATEGORY and schema.unknown_categories == "error":
            assert list(column.categories or ()) in [o.get("enum") for o in options], name


@dataclass
class Server:
    """A running `bentoml serve` of the service."""

    url: str
    process: subprocess.Popen[bytes]
    log_url: str
    state_file: Path
    output: Path

    def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM and wait for a clean exit; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)


@contextmanager
def running_server(
    folder: Path,
    state: dict[str, Any],
    *,
    serving: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    log_url: str | None = None,
    target: str = SERVICE,
) -> Iterator[Server]:
    """Serve ``target`` (the repository's service, or a Bento tag) with its own params,
    desired state and prediction log in ``folder``; stopped (SIGTERM) at exit."""
    params = yaml.safe_load(PARAMS.read_text())
    params["serving"] = params.get("serving", {}) | {"reload_interval_s": 0.2} | (serving or {})
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    state_file = write_state(folder / "state.yaml", **state)
    log_url = log_url or f"sqlite:///{folder / 'predictions.db'}"
    port = free_port()
    output = folder / "server.log"
    variables = (
        os.environ
        | {
            "MODELOPS_PARAMS": str(folder / "params.yaml"),
            "MODELOPS_DESIRED_STATE": str(state_file),
            "MODELOPS_LOG_URL": log_url,
            "OMP_NUM_THREADS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        | (env or {})
    )
    with output.open("wb") as sink:
        process = subprocess.Popen(
            ["bentoml", "serve", target, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=variables,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_url, state_file, output)
    try:
        try:
            wait_ready(server.url, process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{output.read_text()[-3000:]}") from exc
        yield server
    finally:
        try:
            server.stop()
        except subprocess.TimeoutExpired:
            process.kill()


class Fragile:
    """A fitted model that fails on purpose: it raises for records whose ``column`` is
    ``fail`` and scores NaN those whose ``column`` is ``nan``; the rest as ``model`` does."""

    def __init__(self, model: Any, column: str, fail: float, nan: float) -> None:
        self.model, self.column, self.fail, self.nan = model, column, fail, nan
        self.feature_names_in_ = model.feature_names_in_

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        values = frame[self.column].to_numpy()
        if (values == self.fail).any():
            raise ValueError("poisoned record")
        proba = self.model.predict_proba(frame)
        proba[values == self.nan] = float("nan")
        return proba


def poison_values(settings: Settings, holdout: pd.DataFrame) -> tuple[str, float, float]:
    """A float feature and two values of it inside its range that no holdout row has."""
    schema = settings.data_schema
    column = next(c for c in schema.features if schema.columns[c].type == ColumnType.FLOAT)
    fail = float(np.nextafter(holdout[column].median(), np.inf))
    nan = float(np.nextafter(fail, np.inf))
    assert not holdout[column].isin([fail, nan]).any()
    return column, fail, nan


class FailsAbove:
    """A fitted model that raises for any record whose ``column`` is above ``limit`` (a
    release that breaks on part of the traffic); the rest as ``model`` scores them."""

    def __init__(self, model: Any, column: str, limit: float) -> None:
        self.model, self.column, self.limit = model, column, limit
        self.feature_names_in_ = model.feature_names_in_

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        if (frame[self.column].to_numpy(dtype=float) > self.limit).any():
            raise ValueError("broken release")
        return self.model.predict_proba(frame)
