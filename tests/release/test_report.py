"""The promotion report: the two versions offline on the same holdout, and live from the
prediction log (per version, agreement on shared requests, ROC-AUC on labels)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import bentoml
import numpy as np
import pytest

from modelops import paths
from modelops.io import dump_model, load_model
from modelops.release import report
from modelops.release.registry import find
from modelops.release.report import live, pair
from modelops.serving.predlog import FEEDBACK, PREDICTIONS, make_engine, migrate
from tests.release.support import NAME


@pytest.fixture
def promotion(released):
    environments = released / "deploy/environments"
    environments.mkdir(parents=True, exist_ok=True)
    (environments / "staging.yaml").write_text(
        "champion: churn:v0.1.0\nchallenger: churn:v0.2.0\nstrategy: {type: shadow}\n"
    )
    return released


def test_the_pair_is_the_registered_versions_of_the_desired_state(promotion, release_settings):
    versions = pair(promotion, release_settings, "staging")
    assert (versions.champion.version, versions.challenger.version) == ("v0.1.0", "v0.2.0")


def log_of(tmp_path, rows, labels):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    engine = make_engine(url)
    migrate(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as connection:
        connection.execute(
            PREDICTIONS.insert(),
            [
                {
                    "request_id": rid,
                    "record_id": rid,
                    "entity_id": None,
                    "created_at": now,
                    "model_version": tag,
                    "route": route,
                    "automation": "partial",
                    "score": score,
                    "decision": decision,
                    "latency_ms": latency,
                    "inputs": {},
                    "reasons": [],
                }
                for rid, tag, route, score, decision, latency in rows
            ],
        )
        if labels:
            connection.execute(
                FEEDBACK.insert(),
                [
                    {"request_id": rid, "record_id": rid, "label": y, "received_at": now}
                    for rid, y in labels
                ],
            )
    engine.dispose()
    return url


def test_live_comparison_from_the_prediction_log(promotion, release_settings, tmp_path):
    versions = pair(promotion, release_settings, "staging")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    champion_scores = np.clip(0.3 * y + rng.random(200) * 0.7, 0, 1)
    rows, labels = [], []
    for i in range(200):
        rid = f"r{i}"
        rows.append((rid, "churn:v0.1.0", "champion", champion_scores[i], "approve", 2.0))
        # the challenger in shadow: the same score on half the requests, 0.95 on the rest
        shadow = champion_scores[i] if i % 2 == 0 else 0.95
        rows.append((rid, "churn:v0.2.0", "shadow", shadow, "none", 2.0))
        labels.append((rid, int(y[i])))
    lines = live(log_of(tmp_path, rows, labels), versions)
    table = "\n".join(lines)
    assert "| churn:v0.1.0 | champion | 200 |" in table
    assert "| churn:v0.2.0 | shadow | 200 |" in table
    assert "| 200 | " in table  # labelled requests per version
    agreement = lines[-1]
    assert "On the 200 requests both versions scored" in agreement
    # the challenger's thresholds are 0.3 (review) / 0.8 (decline): 0.95 declines
    champion_decisions = report._decisions(champion_scores, {"review": 0.3, "decline": 0.8})
    expected = np.mean([
        champion_decisions[i] == (champion_decisions[i] if i % 2 == 0 else "decline")
        for i in range(200)
    ])  # fmt: skip
    assert f"decisions agree on {expected:.1%}" in agreement


def test_a_log_without_the_versions_says_so(promotion, release_settings, tmp_path):
    versions = pair(promotion, release_settings, "staging")
    url = log_of(tmp_path, [("x", "churn:v9.9.9", "champion", 0.1, "approve", 1.0)], [])
    assert "Neither version has answered" in live(url, versions)[0]
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    assert "no predictions yet" in live(empty, versions)[0]


def test_offline_scores_both_versions_on_the_same_holdout(
    promotion, release_settings, settings, fitted, train_holdout, monkeypatch, versions
):
    """The models come from DVC at each version's commit; here from the test session."""
    holdout = train_holdout[1]
    (promotion / paths.HOLDOUT).parent.mkdir(parents=True, exist_ok=True)
    holdout.to_parquet(promotion / paths.HOLDOUT)
    small = Path(bentoml.models.get(versions[1]).path) / "model.joblib"
    models = {
        find(promotion, NAME, "v0.1.0").commit: fitted,
        find(promotion, NAME, "v0.2.0").commit: load_model(small),
    }
    monkeypatch.setattr(
        report, "fetch_from_dvc", lambda commit, target: dump_model(models[commit], target)
    )
    named = release_settings.model_copy(update={"evaluation": settings.evaluation})
    lines = report.offline(promotion, named, pair(promotion, named, "staging"))
    table = "\n".join(lines)
    assert f"On this branch's holdout ({len(holdout):,} rows)" in table
    roc = next(line for line in lines if line.startswith("| ROC-AUC"))
    champion, challenger, difference = (cell.strip() for cell in roc.split("|")[2:5])
    assert float(challenger) - float(champion) == pytest.approx(
        float(difference.split()[0]), abs=2e-4
    )
    assert float(champion) > float(challenger), "the quicker model is the weaker one"
