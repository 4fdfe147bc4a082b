"""Serving parity: the rows replayed, their offline references, the comparison, and
(integration) the measurement against a real `bentoml serve` of the Bento: unchanged,
with perturbed answers, and with a one-row path broken in a copy of the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from modelops import paths
from modelops.config import Settings
from modelops.errors import InputError
from modelops.io import dump_model, read_json, write_json, write_parquet
from modelops.review.parity import (
    BATCH,
    MAX_EXAMPLES,
    ONE_ROW,
    ParityError,
    compare,
    measure,
    prepare,
    reference_scores,
    replay,
    select_rows,
    serving,
    workspace,
)
from modelops.schema import ColumnType, Schema
from modelops.serving.bento import bento_name
from modelops.serving.contract import OPTIONAL_ROLES, ApiNames
from modelops.serving.state import Automation
from modelops.training.evaluate import evaluate
from modelops.training.scoring import score
from tests.conftest import PARAMS, REPO
from tests.integration.test_pipeline import copy_template
from tests.serving.support import minimal_lineage

ROWS = 40  # fewer than the default: each row costs two requests
LOCAL_STATE = Path("deploy/environments/local.yaml")


def write_pipeline_outputs(
    root: Path, settings: Settings, model: Any, train: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    """What `dvc repro` leaves and parity reads: the model and its lineage, the train and
    holdout data, and the holdout scores as the evaluate stage writes them."""
    path = dump_model(model, root / paths.MODEL)
    write_parquet(train, root / paths.TRAIN)
    write_parquet(holdout, root / paths.HOLDOUT)
    scores = evaluate(
        model, {}, pd.read_parquet(root / paths.HOLDOUT), settings.data_schema, settings.evaluation
    ).holdout_scores
    write_parquet(scores, root / paths.HOLDOUT_SCORES)
    write_json(minimal_lineage(settings, path, scores["score"].to_numpy()), root / paths.LINEAGE)


def a_template(root: Path, settings: Settings, model: Any, train_holdout) -> Path:
    """A copy of the repository with the params under test, the fixture model's pipeline
    outputs, and a local desired state pinning a version this model store lacks (as on
    a fresh CI runner)."""
    copy_template(root)
    shutil.copy(PARAMS, root / "params.yaml")
    shutil.copytree(REPO / "build", root / "build")
    write_pipeline_outputs(root, settings, model, *train_holdout)
    (root / LOCAL_STATE).write_text(f"champion: {settings.model.name}:0123456789ab\n")
    return root


def with_this_python() -> dict[str, str]:
    """This environment, with this interpreter's scripts (bentoml, modelops) on PATH."""
    return os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def answers_for(offline: np.ndarray, decisions: list[str]) -> list[dict[str, Any]]:
    """Answers as a faithful service gives them."""
    return [{"score": float(s), "decision": d} for s, d in zip(offline, decisions, strict=True)]


@pytest.fixture(scope="module")
def holdout(train_holdout) -> pd.DataFrame:
    return train_holdout[1].reset_index(drop=True)  # as read from data/holdout.parquet


# Rows


def test_rows_hold_every_category_and_a_missing_value_of_each_column_that_may_lack_one(
    settings, holdout
):
    schema = settings.data_schema
    rows = select_rows(holdout, schema, 3, seed=1)
    records = rows.records(schema)
    assert len(rows.sample) == 3
    assert len(records) == len(rows.keys) == len(rows.changes) == 3 + len(rows.changed)
    for name, spec in schema.columns.items():
        if name == schema.target:
            continue
        sent = [r[name] for r in records]
        assert set(spec.categories or spec.allowed or ()) <= set(sent), name
        if spec.nullable or spec.role in OPTIONAL_ROLES:
            assert None in sent, name
    # each copy is a sample row with one value changed
    sample = records[:3]
    for i, (copy, change) in enumerate(zip(records[3:], rows.changed, strict=True)):
        column = change.split("=")[0]
        assert {k for k in copy if copy[k] != sample[i % 3][k]} == {column}, change


def test_rows_are_the_same_for_a_seed_and_differ_between_seeds(settings, holdout):
    schema = settings.data_schema
    first, again = (select_rows(holdout, schema, 50, seed=3) for _ in range(2))
    pd.testing.assert_frame_equal(first.sample, again.sample)
    pd.testing.assert_frame_equal(first.copies, again.copies)
    assert first.changed == again.changed
    other = select_rows(holdout, schema, 50, seed=4)
    assert first.keys != other.keys
    assert len(select_rows(holdout, schema, len(holdout) + 5, seed=0).sample) == len(holdout)
    with pytest.raises(ValueError, match="at least 1"):
        select_rows(holdout, schema, 0, seed=0)


def test_a_missing_value_widens_an_int_or_bool_column():
    schema = Schema.model_validate(
        {
            "columns": {
                "n": {"type": "int", "nullable": True},
                "flag": {"type": "bool", "nullable": True},
                "y": {"type": "int", "role": "target"},
            }
        }
    )
    frame = pd.DataFrame({"n": [1, 2], "flag": [True, False], "y": [0, 1]})
    rows = select_rows(frame, schema, 2, seed=0)
    assert rows.changed == ["n=missing", "flag=missing"]
    assert rows.records(schema)[2:] == [
        {"n": None, "flag": True},
        {"n": 2, "flag": None},
    ]


# Offline references


def test_references_are_the_evaluate_stages_by_key_and_the_pipelines_for_copies(
    settings, fitted, holdout
):
    schema = settings.data_schema
    rows = select_rows(holdout, schema, 1, seed=0)  # one row: copies for most values
    recorded = evaluate(fitted, {}, holdout, schema, settings.evaluation).holdout_scores
    shuffled = recorded.sample(frac=1, random_state=0)  # found by key, not by position
    got = reference_scores(rows, shuffled, fitted, schema)
    expected = score(fitted, pd.concat([rows.sample, rows.copies]), schema)
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(InputError, match=r"holdout_scores.parquet has no score"):
        reference_scores(rows, recorded.drop(index=rows.sample.index[0]), fitted, schema)


# The comparison

KEYS = ["a", "b", "c", "d"]
CHANGES = [None, None, None, "group=b"]
OFFLINE = np.array([0.01, 0.2, 0.5, 0.97])
EXPECTED = ["approve", "review", "review", "decline"]


def test_answers_within_the_tolerance_are_no_mismatch():
    one, batch = answers_for(OFFLINE + 1e-12, EXPECTED), answers_for(OFFLINE, EXPECTED)
    got = compare(KEYS, CHANGES, OFFLINE, EXPECTED, {ONE_ROW: one, BATCH: batch}, 1e-9)
    assert got["rows"] == 4
    assert got["max_abs_diff"] == pytest.approx(1e-12, rel=1e-3)
    assert (got["score_mismatches"], got["decision_mismatches"], got["examples"]) == (0, 0, [])


def test_a_non_finite_served_score_is_a_mismatch():
    served = OFFLINE.copy()
    served[1] = np.nan
    one = answers_for(served, EXPECTED)
    got = compare(KEYS, CHANGES, OFFLINE, EXPECTED, {ONE_ROW: one}, 1e-9)
    assert got["score_mismatches"] == 1
    assert got["max_abs_diff"] == np.inf


def test_a_row_off_on_both_endpoints_counts_once_and_examples_are_the_worst():
    offline = np.linspace(0.01, 0.9, 30)
    expected = ["approve"] * 30
    one = answers_for(offline / 100, expected)  # a feature rescaled in the service, say
    batch = answers_for(offline * 0.999, expected)
    got = compare(
        list(range(30)), [None] * 30, offline, expected, {ONE_ROW: one, BATCH: batch}, 1e-9
    )
    assert (got["score_mismatches"], got["decision_mismatches"]) == (30, 0)
    assert len(got["examples"]) == MAX_EXAMPLES
    diffs = [abs(e["served"] - e["offline"]) for e in got["examples"]]
    assert diffs == sorted(diffs, reverse=True)
    assert {e["endpoint"] for e in got["examples"]} == {ONE_ROW}
    assert got["examples"][0]["row"] == 29
    assert got["max_abs_diff"] == pytest.approx(0.9 * 0.99)


# The measurement


def test_what_stops_the_measurement_is_recorded(settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outcome = measure(settings)
    assert outcome["status"] == "error"
    assert str(paths.LINEAGE) in outcome["error"]
    assert read_json(paths.PARITY) == outcome
    assert outcome["endpoints"] == [ONE_ROW, BATCH]
    assert outcome["max_abs_diff"] is None


@pytest.fixture(scope="module")
def project(settings, fitted, train_holdout, tmp_path_factory) -> Path:
    return a_template(tmp_path_factory.mktemp("parity"), settings, fitted, train_holdout)


@pytest.fixture(scope="module")
def measured(project, settings) -> dict[str, Any]:
    """`measure` run in ``project`` on the unchanged code."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        patch.setenv("PATH", with_this_python()["PATH"])
        return measure(settings, rows=ROWS)


@pytest.mark.integration
def test_the_unchanged_service_answers_as_scored_offline(measured, project, settings):
    assert measured["status"] == "measured", measured["error"]
    assert measured["error"] is None
    assert measured["max_abs_diff"] <= 1e-9
    assert (measured["score_mismatches"], measured["decision_mismatches"]) == (0, 0)
    assert measured["examples"] == []
    assert measured["rows"] >= ROWS
    assert measured["endpoints"] == [ONE_ROW, BATCH]
    model_id = read_json(project / paths.LINEAGE)["model_id"]
    name = settings.model.name
    assert measured["model"] == f"{name}:{model_id.removeprefix(name + '-')}"
    assert read_json(project / paths.PARITY) == measured
    # nothing of the user's is touched: the server's state and log were temporary
    assert sorted(p.name for p in (project / paths.PR).iterdir()) == ["parity.json"]
    assert not list((project / "reports").glob("predictions.db*"))
    assert (project / LOCAL_STATE).read_text() == f"champion: {name}:0123456789ab\n"


@pytest.fixture(scope="module")
def served(measured, project, settings) -> dict[str, Any]:
    """The plan `measure` follows, the answers of the Bento it built, the error of a
    refused request made after them, and the URL the server had."""
    names = ApiNames.from_words(settings.words)
    bento = f"{bento_name(settings.model)}:{measured['model'].split(':')[1]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        patch.setenv("PATH", with_this_python()["PATH"])
        lineage = read_json(paths.LINEAGE)
        plan = prepare(settings, measured["model"], lineage, ROWS, 0, Automation.PARTIAL)
        records = plan.rows.records(settings.data_schema)
        got: dict[str, Any] = {"plan": plan, "refused": None}
        try:
            with workspace(plan.state) as folder, serving(settings, bento, folder) as url:
                got |= {"url": url, "answers": replay(url, names, records, batch_size=7)}
                replay(url, names, [{**records[0], "not_a_column": 1}], batch_size=7)
        except ParityError as exc:
            got["refused"] = str(exc)
    return got


@pytest.mark.integration
def test_perturbed_served_answers_are_counted_and_shown_worst_first(served):
    plan, answers = served["plan"], served["answers"]
    rows = plan.rows
    facts = (rows.keys, rows.changes, plan.offline, plan.expected)
    unchanged = compare(*facts, answers, 1e-9)
    assert (unchanged["score_mismatches"], unchanged["decision_mismatches"]) == (0, 0)
    one = [dict(a) for a in answers[ONE_ROW]]
    batch = [dict(a) for a in answers[BATCH]]
    for i in (0, 1, 2):
        one[i]["score"] += 0.1 * (i + 1)
    wrong = next(d for d in ("approve", "review", "decline") if d != batch[5]["decision"])
    batch[5]["decision"] = wrong
    got = compare(*facts, {ONE_ROW: one, BATCH: batch}, 1e-9)
    assert (got["score_mismatches"], got["decision_mismatches"]) == (3, 1)
    assert got["max_abs_diff"] == pytest.approx(0.3)
    shown = [(e["row"], e["endpoint"]) for e in got["examples"]]
    assert shown == [
        (rows.keys[5], BATCH),  # a wrong decision first
        (rows.keys[2], ONE_ROW),
        (rows.keys[1], ONE_ROW),
        (rows.keys[0], ONE_ROW),
    ]
    assert got["examples"][0]["served_decision"] == wrong
    assert got["examples"][0]["expected_decision"] == plan.expected[5]
    assert got["examples"][1]["served"] == pytest.approx(got["examples"][1]["offline"] + 0.3)


@pytest.mark.integration
def test_an_http_error_ends_the_replay_and_the_server(served):
    assert "POST /predict answered 400" in served["refused"]
    assert "not_a_column" in served["refused"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{served['url']}/livez", timeout=2)


@pytest.mark.integration
def test_a_broken_one_row_path_is_caught_end_to_end(settings, fitted, train_holdout, tmp_path):
    """`modelops parity` in a copy of the repository whose one-row endpoint divides a
    number by 100 before scoring (the batch endpoint is left alone)."""
    root = a_template(tmp_path, settings, fitted, train_holdout)
    schema = settings.data_schema
    column = next(
        c
        for c in schema.features
        if schema.columns[c].type in (ColumnType.INT, ColumnType.FLOAT)
        and not schema.columns[c].allowed
    )
    service = root / "src/modelops/serving/service.py"
    code = service.read_text()
    one_row = 'self._predict([record.model_dump(mode="json")], "predict", ctx)'
    assert one_row in code, "the one-row endpoint changed: update this test"
    broken = code.replace(
        one_row, 'self._predict([shrunk(record.model_dump(mode="json"))], "predict", ctx)'
    )
    service.write_text(
        broken
        + f"""

def shrunk(record):  # the bug under test
    value = record["{column}"]
    return {{**record, "{column}": None if value is None else value / 100}}
"""
    )
    done = subprocess.run(
        ["modelops", "parity"],
        cwd=root,
        env=with_this_python() | {"PYTHONPATH": str(root / "src")},  # the copy's code
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = read_json(root / paths.PARITY)
    assert outcome["status"] == "measured"
    assert outcome["score_mismatches"] > 0
    assert outcome["max_abs_diff"] > 1e-9
    assert outcome["examples"]
    assert {e["endpoint"] for e in outcome["examples"]} == {ONE_ROW}
    assert f"{outcome['score_mismatches']} score" in done.stderr
