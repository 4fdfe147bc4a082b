"""The pull-request report: what it says, in the words of params.yaml, rendered as GitHub
would (tables, image, verdict, no raw markdown left), within GitHub's size limit."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from modelops import paths
from modelops.io import dump_model, read_json, write_json
from modelops.metric_registry import METRICS
from modelops.review import plots, preview, report
from modelops.review.check import run_gates
from modelops.training.train import build_model, fit
from tests.conftest import with_updates
from tests.review.test_preview import Page

WORDS = {"record": "widget", "records": "widgetry", "positive": "defect", "negative": "sound"}


def test_worse_challenger_fails_and_the_rendered_report_shows_it(
    project, check_settings, fitted, train_holdout, add_champion
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
    assert rows[0] == 1 + len(METRICS)  # header + every metric of the registry
    assert [img["src"] for img in page.images] == [report.FIGURE]
    assert "▼ worse" in page.visible
    lines = [line.strip() for line in page.visible.splitlines()]
    assert not [line for line in lines if line.startswith("|")]
    for raw in ("**", "![", "```", "<details>", "</summary>"):
        assert raw not in page.visible


def test_report_stays_under_githubs_limit_with_many_slices(
    project, check_settings, fitted, add_champion
):
    add_champion(fitted)
    run_gates(check_settings)
    comparison = read_json(paths.COMPARISON)
    entry = {"rows": 10, "positives": 1, "challenger": 0.9, "champion": 0.9, "improvement": None}
    many = {"merchant": {f"m{i:05d}": entry for i in range(5000)}}
    comparison["slices"] = {"metric": "roc_auc", "groups": many}
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


@pytest.fixture
def worded(check_settings):
    """The settings with words unlike any data set's."""
    return with_updates(check_settings, words=WORDS)


def test_the_report_speaks_in_the_configured_words(project, worded, fitted, add_champion):
    add_champion(fitted)
    run_gates(worded)
    comparison = read_json(paths.COMPARISON)
    holdout = comparison["holdout"]
    write_json({"rows": 100, "weeks": 2, "positives": 3, "positive_rate": 0.03,
                "time_max": "2025-01-01"}, paths.VALIDATION_REPORT)  # fmt: skip
    text = report.write(worded, images=False).read_text()
    assert f"{holdout['rows']:,} holdout widgetry ({holdout['positives']:,} defect cases)" in text
    assert "| cost per 1,000 widgetry |" in text
    assert f"flags its top {holdout['review_rate']:.1%} of the widgetry by score" in text
    for label in ("defect cases", "defect rate", "latest widget"):
        assert f"| {label} |" in text
    assert "| slice | rows | defect | base roc_auc |" in text


def test_the_report_without_words_uses_neutral_ones():
    inputs = report.ReportInputs(verdict={"verdict": "PASS", "failed": [], "gates": []})
    rows = dict(report.data_rows(inputs.words))
    assert rows["positives"] == "positive cases"
    assert rows["positive_rate"] == "positive rate"
    assert rows["time_max"] == "latest record"


def test_the_figure_labels_the_observed_rate_with_the_positive_word(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots.plt, "close", drawn.append)
    scores = pd.DataFrame({"label": [0, 1] * 50, "challenger": [i / 100 for i in range(100)]})
    plots.curves_png(scores, tmp_path / "curves.png", 5, positive="defect")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    (figure,) = drawn
    assert [ax.get_ylabel() for ax in figure.axes] == [
        "true positive rate", "precision", "observed defect rate"]  # fmt: skip
    plt.close(figure)
