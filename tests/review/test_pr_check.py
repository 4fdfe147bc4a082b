"""The PR check in-process, on the small fixture model: comparison, gates, verdict and
the report, then the report rendered as GitHub would (tables, image, verdict, no raw
markdown left)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from modelops import paths
from modelops.io import dump_model, read_json, write_json, write_parquet
from modelops.review import preview, report
from modelops.review.check import run_gates
from modelops.review.compare import unseen_rows
from modelops.review.repro import parse
from modelops.training.train import build_model, fit
from tests.conftest import REPO, with_updates
from tests.review.test_preview import Page


@pytest.fixture
def check_settings(settings):
    """Fewer latency calls: the budget gate's measurement is not what these tests test."""
    budgets = settings.gates.budgets.model_copy(update={"latency_calls": 20})
    return with_updates(settings, gates={"budgets": budgets})


@pytest.fixture
def project(tmp_path, monkeypatch, fitted, fitted_baselines, train_holdout):
    """A working directory holding the outputs of `dvc repro` and of `make champion`."""
    monkeypatch.chdir(tmp_path)
    dump_model(fitted, paths.MODEL)
    dump_model(fitted_baselines, paths.BASELINES)
    write_parquet(train_holdout[1], paths.HOLDOUT)
    shutil.copy(REPO / "params.yaml", "params.yaml")
    write_json(parse("Running stage 'train':\n", 0), paths.PIPELINE_RUN)
    return tmp_path


def add_champion(model, status: str = "fetched") -> None:
    (paths.CHAMPION / "base").mkdir(parents=True, exist_ok=True)
    dump_model(model, paths.CHAMPION / "model.joblib")
    shutil.copy("params.yaml", paths.CHAMPION / "base/params.yaml")
    write_json({"status": status, "base": "main", "commit": "a" * 40, "reason": "test"},
               paths.CHAMPION / "source.json")  # fmt: skip


def test_same_model_as_champion_passes_with_zero_difference(project, check_settings, fitted):
    add_champion(fitted)
    decision = run_gates(check_settings)
    assert decision["verdict"] == "PASS", decision["failed"]
    comparison = read_json(paths.COMPARISON)
    assert comparison["difference"]["roc_auc"] == {"value": 0, "ci_low": 0, "ci_high": 0}
    assert "behaviour" in decision["skipped"]  # not run here: skipped, never passed
    text = report.write(check_settings).read_text()
    assert text.startswith("## ✅ PASS")
    assert (paths.PR / report.FIGURE).stat().st_size > 10_000


def test_worse_challenger_fails_and_the_rendered_report_shows_it(
    project, check_settings, fitted, train_holdout
):
    add_champion(fitted)
    worse = with_updates(check_settings, model={"params": {"max_iter": 3, "learning_rate": 0.05}})
    dump_model(fit(build_model(worse.data_schema, worse.model), train_holdout[0],
                   worse.data_schema), paths.MODEL)  # fmt: skip
    decision = run_gates(check_settings)
    assert decision["verdict"] == "FAIL"
    assert "champion:roc_auc" in decision["failed"]
    markdown = report.write(check_settings).read_text()
    assert len(markdown) < report.LIMIT

    page = Page(preview.render_html(markdown, "report"))
    verdict_line = next(line for line in page.visible.splitlines() if line.strip())
    assert "FAIL" in verdict_line
    assert "champion:roc_auc" in verdict_line
    rows = [t["rows"] for t in page.tables]
    assert len(rows) >= 5  # metrics, gates, params, data, models, slices
    assert rows[0] == 8  # header + 7 metrics
    assert [img["src"] for img in page.images] == [report.FIGURE]
    assert "▼ worse" in page.visible
    lines = [line.strip() for line in page.visible.splitlines()]
    assert not [line for line in lines if line.startswith("|")]
    for raw in ("**", "![", "```", "<details>", "</summary>"):
        assert raw not in page.visible


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


def test_report_stays_under_githubs_limit_with_many_slices(project, check_settings, fitted):
    add_champion(fitted)
    run_gates(check_settings)
    comparison = read_json(paths.COMPARISON)
    entry = {"rows": 10, "positives": 1, "roc_auc": 0.9}
    many = {"merchant": {f"m{i:05d}": entry for i in range(5000)}}
    comparison["slices"] = {"challenger": many, "champion": many}
    write_json(comparison, paths.COMPARISON)
    text = report.write(check_settings).read_text()
    assert len(text) < report.LIMIT
    assert "more slices" in text
    assert "### Gates" in text


def test_job_summary_appends_the_report_without_local_images(project, check_settings, monkeypatch):
    run_gates(check_settings)
    report.write(check_settings)
    summary = project / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    report.append_job_summary()
    text = summary.read_text()
    assert "### Gates" in text
    assert f"]({report.FIGURE})" not in text
    assert "pr-report` artifact" in text


def test_params_and_schema_changes_are_listed():
    base = {"model": {"params": {"max_iter": 300}}, "schema": {"columns": {"a": {"type": "int"}}}}
    pr = {"model": {"params": {"max_iter": 200}, "note": "x"},
          "schema": {"columns": {"a": {"type": "float"}, "b": {"type": "int"}}}}  # fmt: skip
    diff = "\n".join(report.params_diff(base, pr))
    assert "| `model.params.max_iter` | 300 | 200 |" in diff
    assert "| `model.note` | (absent) | x |" in diff
    schema = "\n".join(report.schema_changes(base, pr))
    assert "added column `b`" in schema
    assert 'changed column `a`: `{"type": "int"}` → `{"type": "float"}`' in schema


def test_rows_the_champion_was_trained_on_are_left_out(train_holdout, settings):
    holdout = train_holdout[1]
    times = holdout["timestamp"].sort_values()
    cutoff = times.iloc[len(times) // 2]
    lineage = {"data": {"train": {"time_max": str(cutoff)}}}
    kept, note = unseen_rows(holdout, settings.data_schema, lineage)
    assert (kept["timestamp"] > cutoff).all()
    assert 0 < len(kept) < len(holdout)
    assert "the champion was trained on them" in note
    assert unseen_rows(holdout, settings.data_schema, None) == (holdout, None)


def test_scores_frame_matches_the_shared_rows(project, check_settings, fitted):
    add_champion(fitted)
    run_gates(check_settings)
    scores = pd.read_parquet(paths.PR_SCORES)
    assert list(scores.columns) == ["label", "challenger", "champion"]
    assert len(scores) == read_json(paths.COMPARISON)["holdout"]["rows"]
    assert json.loads(paths.VERDICT.read_text())["verdict"] in ("PASS", "FAIL")


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
