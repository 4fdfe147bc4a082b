"""`modelops gates` in-process on the small fixture model: comparison, gates and verdict,
and what the report then says about them."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from modelops import paths
from modelops.io import read_json, write_json, write_parquet
from modelops.review import check, report
from modelops.review.check import run_gates
from modelops.review.repro import parse
from tests.conftest import REPO
from tests.review.conftest import comparison, scored


def test_same_model_as_champion_passes_with_zero_difference(
    project, check_settings, fitted, add_champion
):
    add_champion(fitted)
    decision = run_gates(check_settings)
    assert decision["verdict"] == "PASS", decision["failed"]
    comparison = read_json(paths.COMPARISON)
    assert comparison["difference"]["roc_auc"] == {"value": 0, "ci_low": 0, "ci_high": 0}
    assert "behaviour" in decision["skipped"]  # not run here: skipped, never passed
    text = report.write(check_settings).read_text()
    assert text.startswith("## ✅ PASS")
    assert (paths.PR / report.FIGURE).stat().st_size > 10_000


def test_without_champion_the_champion_gates_are_skipped_not_passed(project, check_settings):
    decision = run_gates(check_settings)
    skipped = [g for g in decision["gates"] if g["name"].startswith("champion:")]
    assert skipped
    assert {g["status"] for g in skipped} == {"skipped"}
    text = report.write(check_settings).read_text()
    assert "No champion to compare with: the champion was not fetched" in text


def test_failed_validation_skips_the_model_and_shows_the_message(project, check_settings):
    output = (
        "Running stage 'validate':\n[validate] ERROR: data/raw: 1 problem\n"
        "  - column 'amount', rule 'greater_than_or_equal_to(0.01)': 3 rows\n"
        "ERROR: failed to reproduce 'validate': failed to run\n"
    )
    write_json(parse(output, 1), paths.PIPELINE_RUN)
    decision = run_gates(check_settings)
    assert decision["failed"] == ["data_validation"]
    assert not paths.COMPARISON.exists()  # stale outputs are never judged
    text = report.write(check_settings, images=False).read_text()
    assert text.splitlines()[0] == "## ❌ FAIL: 1 gate(s) failed: `data_validation`"
    assert "rule 'greater_than_or_equal_to(0.01)': 3 rows" in text
    assert "Validation: ❌ failed" in text


def test_without_pipeline_outputs_the_verdict_says_the_pipeline_did_not_run(
    tmp_path, monkeypatch, check_settings
):
    monkeypatch.chdir(tmp_path)
    decision = run_gates(check_settings)
    assert decision["failed"] == ["pipeline"]
    assert "did not run" in decision["gates"][-1]["reason"]
    shutil.copy(REPO / "params.yaml", "params.yaml")
    text = report.write(check_settings).read_text()
    assert text.startswith("## ❌ FAIL: 1 gate(s) failed: `pipeline`")


def test_a_failed_pipeline_run_is_judged_without_its_outputs(project, check_settings):
    output = "Running stage 'train':\n[train] ERROR: boom\nERROR: failed to reproduce 'train'\n"
    write_json(parse(output, 1), paths.PIPELINE_RUN)
    decision = run_gates(check_settings)
    assert "pipeline" in decision["failed"]
    assert not paths.COMPARISON.exists()
    assert not paths.PR_SCORES.exists()
    assert read_json(paths.VERDICT) == decision


def test_a_code_only_change_is_one_that_touches_no_data_and_no_params():
    assert check.code_only(["src/modelops/training/train.py", "dvc.lock"])
    assert not check.code_only(["src/x.py", "params.yaml"])
    assert not check.code_only(["data/raw.dvc"])
    assert not check.code_only(["data/more/new.parquet"])
    assert not check.code_only(None)  # unknown: no claim


def test_a_credible_gain_from_a_code_only_change_is_flagged_as_a_leakage_smell(gate_data):
    _, signal, _ = gate_data
    champion = scored(signal, 2.5, 1)
    better = comparison(gate_data, scored(signal, 0.3, 2), champion)
    equal = comparison(gate_data, scored(signal, 2.5, 2), champion)
    code = ["src/modelops/data/split.py", "dvc.lock"]
    assert check.warnings(better, code) == [check.LEAKAGE]
    assert check.warnings(better, [*code, "params.yaml"]) == []  # a params change may improve
    assert check.warnings(equal, code) == []


def test_fixed_thresholds_are_read_from_every_desired_state(tmp_path):
    (tmp_path / "local.yaml").write_text("champion: m:latest\n")
    (tmp_path / "production.yaml").write_text(
        "champion: m:1\nthresholds: {review: 0.06, decline: 0.4}\n"
    )
    assert check.fixed_thresholds(tmp_path) == {
        str(tmp_path / "production.yaml"): {"review": 0.06, "decline": 0.4}
    }


def test_a_leaky_split_fails_the_integrity_gates_and_the_report_shows_the_parts(
    project, check_settings, fitted, add_champion, train_holdout
):
    add_champion(fitted)
    train, holdout = train_holdout
    write_parquet(pd.concat([train, holdout.head(100)]), paths.TRAIN)  # holdout rows in train
    decision = run_gates(check_settings)
    failed = set(decision["failed"])
    assert "integrity:rows_add_up" in failed
    schema = check_settings.data_schema
    if schema.id_column:
        assert "integrity:no_shared_ids" in failed
    if schema.time_column:
        assert "integrity:train_before_holdout" in failed
    assert failed <= {g["name"] for g in decision["gates"] if g["kind"] == "integrity"}
    text = report.write(check_settings, images=False).read_text()
    head = text.split("### Metrics")[0]
    assert "`integrity:rows_add_up`: train" in head  # the reason, in the first lines
    assert f"| train rows | {report.num(None)} | {len(train) + 100:,} |" in text


def test_in_the_pr_job_a_missing_measurement_fails(project, check_settings):
    write_json(parse("Running stage 'train':\n", 0), paths.PIPELINE_RUN)
    decision = run_gates(check_settings)
    assert {"behaviour", "parity:scores", "parity:decisions"} <= set(decision["failed"])
    gate = next(g for g in decision["gates"] if g["name"] == "parity:scores")
    assert "`make parity`" in gate["reason"]


def test_a_parity_record_of_another_model_is_not_trusted(project, check_settings):
    write_json({"model_id": "m-111111111111"}, paths.LINEAGE)
    record = {"model": "m:222222222222", "status": "measured"}
    assert check.this_models(record) is None
    assert check.this_models(record | {"model": "m:111111111111"}) is not None


def test_no_rows_left_to_compare_skips_the_model_gates_but_judges_integrity(
    project, check_settings, fitted, add_champion, train_holdout
):
    time = check_settings.data_schema.time_column
    if time is None:
        pytest.skip("rows are left out by time only")
    add_champion(fitted)
    latest = str(train_holdout[1][time].max())
    write_json({"model_id": "m-1", "data": {"train": {"time_max": latest}}}, paths.LINEAGE)
    decision = run_gates(check_settings)
    kinds = {g["kind"] for g in decision["gates"]}
    assert "integrity" in kinds
    assert not kinds & {"champion", "floors", "slices", "calibration"}
    model = next(g for g in decision["gates"] if g["name"] == "model")
    assert model["status"] == "skipped"
    assert "were left out" in model["reason"]
