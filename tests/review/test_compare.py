"""Challenger against champion on the same holdout rows: which rows are shared, what is
scored and what the plots get."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelops import paths
from modelops.io import read_json, write_parquet
from modelops.review.check import run_gates
from modelops.review.compare import (
    CHALLENGER,
    CHAMPION,
    champion_source,
    compare,
    latency_ms,
    unseen_rows,
)


def test_rows_either_model_was_trained_on_are_left_out(train_holdout, settings):
    time = settings.data_schema.time_column
    if time is None:
        pytest.skip("the schema has no time column: the holdout is not a window in time")
    holdout = train_holdout[1]
    times = holdout[time].sort_values()
    early, late = times.iloc[len(times) // 4], times.iloc[len(times) // 2]

    def lineage(cutoff):
        return {"data": {"train": {"time_max": str(cutoff)}}}

    lineages = {CHAMPION: lineage(early), CHALLENGER: lineage(late)}  # a leaky challenger
    keep, note = unseen_rows(holdout, settings.data_schema, lineages)
    assert (holdout[time][keep] > late).all()
    assert (holdout[time][~keep] <= late).all()
    assert 0 < keep.sum() < len(holdout)
    assert "the challenger was trained on them" in note
    keep, note = unseen_rows(holdout, settings.data_schema, {CHAMPION: None})
    assert keep.all()
    assert note is None


def test_scores_frame_matches_the_shared_rows(project, check_settings, fitted, add_champion):
    add_champion(fitted)
    run_gates(check_settings)
    scores = pd.read_parquet(paths.PR_SCORES)
    assert list(scores.columns) == ["label", "challenger", "champion"]
    assert len(scores) == read_json(paths.COMPARISON)["holdout"]["rows"]
    assert json.loads(paths.VERDICT.read_text())["verdict"] in ("PASS", "FAIL")


def test_without_a_champion_source_the_reason_says_what_to_run(tmp_path):
    source = champion_source(tmp_path)
    assert source["status"] == "none"
    assert "make champion" in source["reason"]


def test_comparison_scores_every_model_on_the_same_rows(project, check_settings, add_champion,
                                                        fitted):  # fmt: skip
    add_champion(fitted)
    comparison = compare(check_settings)
    summary = comparison.summary
    rows = summary["holdout"]["rows"]
    assert {CHALLENGER, CHAMPION} == set(comparison.scored)
    assert {len(s.score) for s in comparison.scored.values()} == {rows}
    assert summary["holdout"]["positives"] == int(comparison.labels.sum())
    assert set(summary["thresholds"]) == set(summary["budgets"]) == {CHALLENGER, CHAMPION}
    groups = summary["slices"]["groups"]
    assert set(groups) == {s.name for s in check_settings.evaluation.slices}
    # the same model on the same resamples: every paired difference is exactly zero
    assert {d["value"] for d in summary["difference"].values()} == {0}
    judged = [e for values in groups.values() for e in values.values() if e["improvement"]]
    assert {e["improvement"]["value"] for e in judged} <= {0}
    for item in check_settings.evaluation.slices:  # each slicing covers every row once
        assert sum(e["rows"] for e in groups[item.name].values()) == rows


def test_the_challenger_scores_are_the_evaluate_stages(project, check_settings, fitted):
    """The pipeline's holdout scores are reused, not computed again."""
    labels = pd.read_parquet(paths.HOLDOUT)[check_settings.data_schema.target].to_numpy()
    table = pd.DataFrame({"score": np.linspace(0, 1, labels.size), "label": labels})
    write_parquet(table, paths.HOLDOUT_SCORES)
    got = compare(check_settings).scored[CHALLENGER].score
    assert np.array_equal(got, table["score"].to_numpy())
    write_parquet(table.iloc[1:], paths.HOLDOUT_SCORES)  # other rows: scored afresh
    assert not np.array_equal(compare(check_settings).scored[CHALLENGER].score[1:], got[1:])


def test_latency_is_measured_one_row_at_a_time(fitted, train_holdout, settings):
    got = latency_ms(fitted, train_holdout[1], settings.data_schema, calls=20)
    assert 0 < got["latency_ms_p50"] <= got["latency_ms_p95"]
