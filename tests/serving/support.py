"""Helpers of the serving tests: model versions in the test BentoML store, desired-state
files, and a real `bentoml serve` process on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from modelops.config import Settings
from modelops.io import dump_model
from modelops.serving import store
from modelops.serving.bento import free_port, wait_ready
from modelops.serving.contract import requests_from_frame
from modelops.serving.scorer import reference_values
from modelops.training.lineage import file_md5
from modelops.training.metrics import Scored
from modelops.training.scoring import score

REPO = Path(__file__).resolve().parents[2]
SERVICE = "modelops.serving.service:FraudScoring"


def save_version(
    settings: Settings, model: Any, train: pd.DataFrame, holdout: pd.DataFrame, folder: Path
) -> str:
    """Save a fitted model in the BentoML store with a minimal lineage record."""
    schema = settings.data_schema
    path = dump_model(model, folder / "model.joblib")
    scores = score(model, holdout, schema)
    lineage = {
        "model_id": f"{settings.model.name}-{file_md5(path)[:12]}",
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "git": {"commit": None},
        "data": {"raw": {"md5": None}, "train": {"md5": "train"}, "holdout": {"md5": "holdout"}},
        "metrics": {"roc_auc": {"value": 0.5}},
        "decision": {
            "threshold": Scored.at_review_rate(scores, settings.evaluation.review_rate).threshold,
            "decline_threshold": Scored.at_review_rate(
                scores, settings.evaluation.decline_rate
            ).threshold,
        },
    }
    columns = list(model.feature_names_in_)
    return store.save(settings.model.name, path, lineage, reference_values(train, schema, columns))


def write_state(path: Path, **state: Any) -> Path:
    """Write a desired-state file atomically (the service may be reading it)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(state, sort_keys=False))
    tmp.replace(path)
    return path


def sample_requests(settings: Settings, holdout: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    """``n`` holdout rows as API transactions."""
    return requests_from_frame(holdout.head(n), settings.data_schema)


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
    params = yaml.safe_load((REPO / "params.yaml").read_text())
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
