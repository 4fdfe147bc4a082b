"""The time-lapse: a short replay through a real local service and the real monitoring
check (whose verdict a wrapper raises to ``retrain`` in the last week, so the strategies'
rules show), and its parts without a service."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelops.config import LabelSettings, Settings
from modelops.monitoring import check
from modelops.monitoring.timelapse import (
    LabelDelays,
    Options,
    Timelapse,
    labelled,
    matured,
    run,
    send,
    wants_retrain,
    week_start,
)
from tests.conftest import with_updates

pytestmark = pytest.mark.example
ROOT = Path(__file__).resolve().parents[2]
WEEKS = 2


def _repository_state() -> dict[str, str]:
    """Every file of the repository but reports/timelapse, by its content hash."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    files = [*listed, "models/model.joblib", "data/train.parquet", "reports/predictions.db"]
    return {
        name: hashlib.md5((ROOT / name).read_bytes()).hexdigest() if (ROOT / name).exists() else ""
        for name in files
    }


class _RetrainLastWeek:
    """The real check, its verdict raised to ``retrain`` at the last replayed week's end."""

    def __init__(self, last_week_end: pd.Timestamp) -> None:
        self.last = last_week_end
        self.calls: list[tuple[Path, pd.Timestamp]] = []

    def __call__(self, root: Path, settings: Settings, log_url: str, **kwargs: Any) -> Any:
        verdict = check.run(root, settings, log_url, **kwargs)
        self.calls.append((root, pd.Timestamp(kwargs["now"])))
        if pd.Timestamp(kwargs["now"]) == self.last:
            return replace(verdict, level="retrain")
        return replace(verdict, level="ok")


@pytest.fixture(scope="module")
def small(repo_settings: Settings) -> Settings:
    """The project's settings with few records a week and a quick model."""
    if not (ROOT / "models/model.joblib").exists():
        pytest.skip("no trained model: run `make repro` first")
    return with_updates(
        repo_settings,
        simulator={"transactions_per_week": 1500},
        model={"params": {**repo_settings.model.params, "max_iter": 30}},
        evaluation={
            "bootstrap": repo_settings.evaluation.bootstrap.model_copy(update={"n_resamples": 100})
        },
    )


@pytest.fixture(scope="module")
def replayed(
    small: Settings, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Timelapse, Path, _RetrainLastWeek, dict[str, str], dict[str, str], list[str]]:
    """A two-week replay of the three strategies, and the repository before and after."""
    out = tmp_path_factory.mktemp("timelapse")
    first = small.simulator.weeks
    monitor = _RetrainLastWeek(week_start(small, first + WEEKS))
    lines: list[str] = []
    before = _repository_state()
    outcome = run(
        ROOT, small, Options(weeks=WEEKS, out=out), monitor=monitor, progress=lines.append
    )
    return outcome, out, monitor, before, _repository_state(), lines


@pytest.mark.integration
def test_the_replay_writes_its_results_and_a_line_per_week_and_strategy(replayed: Any) -> None:
    outcome, out, _, _, _, lines = replayed
    for name in ("weekly.csv", "timelapse.json", "summary.md", "timelapse.png"):
        assert (out / name).stat().st_size > 0, name
    assert len(lines) == WEEKS * 3
    assert all("elapsed" in line for line in lines)
    table = pd.read_csv(out / "weekly.csv")
    assert sorted(table.strategy.unique()) == ["drift", "never", "scheduled"]
    assert table.roc_auc.between(0.5, 1).all()
    summary = (out / "summary.md").read_text()
    assert "| never |" in summary
    assert "Where the time went" in summary
    for strategy in ("never", "scheduled", "drift"):  # the monitoring check's own files
        assert (out / strategy / f"week-{outcome.first_week}" / "verdict.json").exists()


@pytest.mark.integration
def test_the_strategies_follow_their_rules(replayed: Any) -> None:
    outcome = replayed[0]
    by = {s: [w for w in outcome.weeks if w.strategy == s] for s in ("never", "scheduled", "drift")}
    assert not any(w.retrained or w.promoted for w in by["never"])  # even on a retrain verdict
    assert all(w.retrained and w.gate in ("PASS", "FAIL") for w in by["scheduled"])
    assert [w.retrained for w in by["drift"]] == [False] * (WEEKS - 1) + [True]
    promoted = [w for w in by["scheduled"] if w.promoted]
    for w in promoted:  # a promotion changes what the service serves the next week
        following = [x for x in by["scheduled"] if x.week == w.week + 1]
        assert not following or following[0].served == w.promoted
    assert by["never"][-1].served == by["never"][0].served


@pytest.mark.integration
def test_labels_arrive_late(replayed: Any) -> None:
    outcome = replayed[0]
    for w in outcome.weeks:
        assert w.labels_this_week == 0  # none for the week's own records at its end
    assert all(w.answered == w.rows for w in outcome.weeks)  # before the upstream change


@pytest.mark.integration
def test_monitoring_runs_on_each_copy_at_each_weeks_end(replayed: Any, small: Settings) -> None:
    outcome, _, monitor, *_ = replayed
    assert len(monitor.calls) == WEEKS * 3
    assert all(root != ROOT and not root.exists() for root, _ in monitor.calls)  # cleaned up
    weeks = range(outcome.first_week, outcome.first_week + WEEKS)
    assert sorted({now for _, now in monitor.calls}) == [week_start(small, w + 1) for w in weeks]


@pytest.mark.integration
def test_no_file_of_the_repository_changes(replayed: Any) -> None:
    _, _, _, before, after, _ = replayed
    assert before == after


def test_label_delays_are_seeded_and_positives_come_first() -> None:
    delays = LabelDelays()
    labels = np.r_[np.ones(2000), np.zeros(2000)].astype(int)
    drawn = delays.draw(labels, seed=0, week=20)
    assert np.array_equal(drawn, delays.draw(labels, seed=0, week=20))
    assert not np.array_equal(drawn, delays.draw(labels, seed=0, week=21))
    assert drawn.min() >= delays.positive_min_days
    assert np.median(drawn[:2000]) < np.median(drawn[2000:])
    assert drawn[2000:].max() <= delays.matured_days


def test_a_week_matures_once_its_negatives_can_all_have_come(repo_settings: Settings) -> None:
    both = with_updates(
        repo_settings,
        monitoring={"labels": LabelSettings(unlabelled="unknown")},
    )
    options = Options(weeks=12)
    first = 16
    at_end_of = {w: week_start(both, w + 1) for w in range(16, 28)}
    assert matured(both, options, first, at_end_of[16]) == list(range(16))
    assert matured(both, options, first, at_end_of[20]) == list(range(16))
    assert matured(both, options, first, at_end_of[21])[-1] == 16  # 35 days old


def test_with_positives_only_a_week_matures_once_most_of_them_can_have_come(
    repo_settings: Settings,
) -> None:
    positives = with_updates(
        repo_settings,
        monitoring={"labels": LabelSettings(unlabelled="negative", min_maturity=0.8)},
    )
    delays, options, first = LabelDelays(), Options(weeks=12), 16
    assert 14 < delays.mature_after(positives.monitoring.labels) < 21  # 80 % of chargebacks
    at_end_of = {w: week_start(positives, w + 1) for w in range(16, 28)}
    assert matured(positives, options, first, at_end_of[18]) == list(range(16))  # 14 days
    assert matured(positives, options, first, at_end_of[19])[-1] == 16  # 21 days old
    week = pd.DataFrame({"is_fraud": [1, 1, 0], "_arrives": pd.to_datetime(
        ["2025-05-01", "2025-06-01", None], utc=True)})  # fmt: skip
    target = positives.data_schema.target
    seen = labelled(
        week.rename(columns={"is_fraud": target}), pd.Timestamp("2025-05-15", tz="UTC"), positives
    )
    assert seen[target].tolist() == [1, 0, 0]  # a chargeback not in yet counts as 0


def test_only_the_drift_strategy_listens_to_the_verdict() -> None:
    assert not wants_retrain("never", "retrain")
    assert wants_retrain("scheduled", "ok")
    assert wants_retrain("drift", "retrain")
    assert not wants_retrain("drift", "warn")


class _Reply:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code, self._body = status, body
        self.headers = {"content-type": "application/json" if status == 200
                        else "application/problem+json"}  # fmt: skip

    def json(self) -> Any:
        return self._body


class _Service:
    """Refuses records whose amount is over 100 (naming them) and 422s an id 'bad'."""

    def __init__(self) -> None:
        self.requests = 0

    def post(self, _url: str, json: dict[str, list[dict[str, Any]]], **_: Any) -> _Reply:
        self.requests += 1
        batch = json["records"]
        over = [i for i, r in enumerate(batch) if r["amount"] > 100]
        if over:
            errors = [{"field": f"records.{i}.amount", "message": "too big"} for i in over]
            return _Reply(400, {"status": 400, "errors": errors})
        if any(r["id"] == "bad" for r in batch):
            return _Reply(422, {"status": 422, "errors": []})
        return _Reply(200, [{"request_id": f"q-{r['id']}", "record_id": r["id"]} for r in batch])


def test_refused_records_are_counted_and_the_rest_answered() -> None:
    records: list[dict[str, Any]] = [
        {"id": str(i), "amount": 500.0 if i % 10 == 3 else 1.0} for i in range(64)
    ]
    records[40]["id"] = "bad"
    answered, refused = send(_Service(), "http://x", records, "records", "record_id")
    assert refused == {"400": 7, "422": 1}
    assert sorted(r for _, r in answered) == sorted(
        r["id"] for r in records if r["amount"] <= 100 and r["id"] != "bad"
    )


def test_the_command_line_reads_weeks_window_and_strategies() -> None:
    import argparse

    from modelops.monitoring.cli import add_parser, options

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["timelapse", "--weeks", "3", "--strategies", "never, drift"])
    chosen = options(args)
    assert (chosen.weeks, chosen.strategies) == (3, ("never", "drift"))
    assert chosen.window_weeks == Options().window_weeks
