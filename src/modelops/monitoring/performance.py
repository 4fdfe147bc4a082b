"""Decay and concept drift from delayed labels, and the model's staleness.

Live performance per model version and route on a window's labelled predictions: the
holdout's metrics (ROC-AUC, average precision, recall at the action budget, cost per
1,000 rows), computed by training/metrics.py with the same definitions (recall and cost
at the action budget: the top ``evaluation.review_rate`` share of the labelled rows'
scores, as on the holdout), each with a seeded, vectorised percentile-bootstrap interval
(``evaluation.bootstrap``). A group is

- ``too few positives`` with fewer than ``labels.min_positives`` labelled positives,
- ``provisional`` while its expected label completeness is below ``labels.min_maturity``
  (labels.py),
- else ``judged``: it has decayed when its live ROC-AUC lies below its version's holdout
  ROC-AUC at training time minus ``monitoring.max_auc_drop`` (the floor), by a one-sided
  z-test at the level the check gives it: the difference over the standard errors of
  both, each read off its bootstrap interval's width (the holdout's from the lineage),
  so a small holdout's own luck is not mistaken for decay.

Staleness: the model's age is the days since its training data ended (the lineage's
train ``time_max``). Performance by age, per week after that end, shows decay on the
holdout at training time (later than train) and live.

A label-free estimate of ROC-AUC (``expected_auc``: the expected concordant pairs over
the expected positive-negative pairs if each row is positive with probability its score)
assumes calibrated scores; it is shown as an estimate, available before any label, and
marked unreliable once judged labels disagree: their ROC-AUC interval and its interval
do not overlap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from modelops.config import MonitoringSettings, Settings
from modelops.monitoring.labels import (
    SECONDS_PER_DAY,
    ArrivalCurve,
    days,
    expected_completeness,
    known_labels,
)
from modelops.training.evaluate import make_holdout, scored
from modelops.training.metrics import Estimate, Scored, bootstrap, interval, resample_weights

DECAY_METRICS = ("roc_auc", "average_precision", "recall_at_review_rate", "cost_per_1k")
LIVE = "live"
WEEK_DAYS = 7


class Status(StrEnum):
    """Whether a group's live performance is judged."""

    JUDGED = "judged"
    PROVISIONAL = "provisional"  # labels not mature yet
    TOO_FEW_POSITIVES = "too few positives"


def estimates(
    frame: pd.DataFrame, label: str, score: str, settings: Settings
) -> dict[str, Estimate]:
    """DECAY_METRICS with bootstrap intervals on labelled rows (``label`` 0/1, ``score``;
    cost columns of ``evaluation.costs`` read from ``frame``); empty unless both classes
    are present."""
    y = frame[label].to_numpy(dtype=float)
    if not 0 < y.sum() < y.size:
        return {}
    evaluation = settings.evaluation
    holdout = make_holdout(
        frame.assign(**{settings.data_schema.target: y}), settings.data_schema, evaluation
    )
    boot = evaluation.bootstrap
    result = bootstrap(
        holdout,
        {LIVE: scored(frame[score].to_numpy(dtype=float), evaluation)},
        n_resamples=boot.n_resamples,
        confidence=boot.confidence,
        seed=boot.seed,
    )
    return {name: result.estimate(LIVE, name) for name in DECAY_METRICS}


@dataclass(frozen=True)
class LivePerformance:
    """One model version and route on one window's labels."""

    model_version: str
    route: str
    rows: int  # predictions
    labelled: int  # with a known label (labels.known_labels)
    positives: int
    completeness: float  # expected share of the labels in
    status: Status
    metrics: dict[str, Estimate] = field(default_factory=dict)
    holdout_auc: float | None = None  # the version's at training time
    auc_floor: float | None = None  # holdout_auc - monitoring.max_auc_drop
    floor_p: float | None = None  # one-sided p-value of "live ROC-AUC is at the floor"
    expected_auc: Estimate | None = None  # from the scores alone, if they are calibrated

    def below_floor(self, alpha: float) -> bool:
        """The live ROC-AUC is below the floor at level ``alpha`` (judged or not)."""
        return self.floor_p is not None and self.floor_p < alpha

    def decayed(self, alpha: float) -> bool:
        """Judged, and below the floor at level ``alpha``."""
        return self.status == Status.JUDGED and self.below_floor(alpha)

    @property
    def label_free_reliable(self) -> bool | None:
        """Whether the labels bear out ``expected_auc``: its interval and the judged
        ROC-AUC's interval overlap (None: nothing judged to compare with). The estimate's
        interval alone is too narrow to test against: it leaves out the labels' noise."""
        auc, guess = self.metrics.get("roc_auc"), self.expected_auc
        if self.status != Status.JUDGED or auc is None or guess is None:
            return None
        return auc.ci_low <= guess.ci_high and guess.ci_low <= auc.ci_high


def live_performance(
    outcomes: pd.DataFrame,
    now: pd.Timestamp,
    curves: dict[int, ArrivalCurve],
    settings: Settings,
    holdout_auc: Mapping[str, Estimate],
) -> list[LivePerformance]:
    """Each model version and route of ``outcomes`` (one window of labels.load_outcomes,
    ``fields=settings.evaluation.costs.columns()``), measured against the holdout
    ROC-AUC of its version (``holdout_auc``: version -> estimate; a version missing
    there is measured, not compared)."""
    labels, monitoring = settings.monitoring.labels, settings.monitoring
    found = []
    for (version, route), group in outcomes.groupby(["model_version", "route"], sort=True):
        y = known_labels(group, labels)
        labelled = group.assign(label=y)[y.notna()]
        positives = int((y == 1).sum())
        completeness = float(expected_completeness(group["created_at"], now, curves, labels).mean())
        if positives < labels.min_positives:
            status = Status.TOO_FEW_POSITIVES
        elif completeness < labels.min_maturity:
            status = Status.PROVISIONAL
        else:
            status = Status.JUDGED
        reference = holdout_auc.get(str(version))
        metrics = estimates(labelled, "label", "score", settings)
        floor = None if reference is None else reference.value - monitoring.max_auc_drop
        found.append(
            LivePerformance(
                model_version=str(version),
                route=str(route),
                rows=len(group),
                labelled=len(labelled),
                positives=positives,
                completeness=completeness,
                status=status,
                metrics=metrics,
                holdout_auc=None if reference is None else reference.value,
                auc_floor=floor,
                floor_p=_floor_p(metrics.get("roc_auc"), reference, floor, settings),
                expected_auc=expected_auc(group["score"].to_numpy(dtype=float), settings),
            )
        )
    return found


def _floor_p(
    live: Estimate | None, holdout: Estimate | None, floor: float | None, settings: Settings
) -> float | None:
    """One-sided p-value that the live ROC-AUC is at least ``floor``: a z-test with the
    standard errors of both estimates (intervals at ``evaluation.bootstrap.confidence``)."""
    if live is None or holdout is None or floor is None:
        return None
    if not np.isfinite(
        [live.value, live.ci_low, live.ci_high, holdout.ci_low, holdout.ci_high]
    ).all():
        return None
    confidence = settings.evaluation.bootstrap.confidence
    error = float(np.hypot(standard_error(live, confidence), standard_error(holdout, confidence)))
    if error == 0:
        return 0.0 if live.value < floor else 1.0
    return float(stats.norm.cdf((live.value - floor) / error))


def standard_error(estimate: Estimate, confidence: float) -> float:
    """The standard deviation of a normal estimate whose two-sided ``confidence``
    interval is as wide as ``estimate``'s."""
    return (estimate.ci_high - estimate.ci_low) / (2 * float(stats.norm.ppf((1 + confidence) / 2)))


def _utc(value: Any) -> pd.Timestamp:
    """A timestamp in UTC (a naive one is taken as UTC, as the data's time column is)."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def trained_until(lineage: Mapping[str, Any]) -> pd.Timestamp | None:
    """When the model's training data ended (lineage: data.train.time_max); None without
    a time column."""
    end = lineage.get("data", {}).get("train", {}).get("time_max")
    return None if end is None else _utc(end)


def holdout_metric(lineage: Mapping[str, Any], name: str = "roc_auc") -> Estimate | None:
    """A metric of the version's holdout at training time, with its interval (lineage:
    metrics; without one, the interval is the point)."""
    metric = lineage.get("metrics", {}).get(name)
    if metric is None:
        return None
    value = float(metric["value"])
    return Estimate(value, float(metric.get("ci_low", value)), float(metric.get("ci_high", value)))


@dataclass(frozen=True)
class Staleness:
    """How old the model's training data is, against the limit."""

    trained_until: pd.Timestamp | None
    age_days: float | None  # None: the data has no time column
    limit_days: int

    @property
    def stale(self) -> bool:
        """Older than the limit (unknown age is not stale)."""
        return self.age_days is not None and self.age_days > self.limit_days


def staleness(
    lineage: Mapping[str, Any], now: pd.Timestamp, settings: MonitoringSettings
) -> Staleness:
    """The model's age at ``now`` against ``max_model_age_days``."""
    end = trained_until(lineage)
    age = None if end is None else (_utc(now) - end).total_seconds() / SECONDS_PER_DAY
    return Staleness(end, age, settings.max_model_age_days)


def performance_by_week(
    frame: pd.DataFrame,
    *,
    time: str,
    label: str,
    score: str,
    trained_until: pd.Timestamp,
    settings: Settings,
) -> pd.DataFrame:
    """Per week of age (0: the first week after the training data ended): rows,
    positives and each of DECAY_METRICS with its interval (``<metric>``,
    ``<metric>_low``, ``<metric>_high``; nan with fewer than labels.min_positives
    positives). For the holdout at training time (its time column, target and scores)
    or the log (created_at, labels.known_labels, score); rows without a known label are
    left out."""
    frame = frame[frame[label].notna()]
    times = pd.to_datetime(frame[time], utc=True)
    weeks = (days(times - trained_until) // WEEK_DAYS).astype(int)
    week = pd.Series(weeks, index=frame.index, name="week")
    rows = []
    for number, part in frame.groupby(week, sort=True):
        positives = int(part[label].sum())
        entry: dict[str, float] = {"week": number, "rows": len(part), "positives": positives}
        found = (
            estimates(part, label, score, settings)
            if positives >= settings.monitoring.labels.min_positives
            else {}
        )
        for name in DECAY_METRICS:
            got = found.get(name)
            entry |= {
                name: got.value if got else np.nan,
                f"{name}_low": got.ci_low if got else np.nan,
                f"{name}_high": got.ci_high if got else np.nan,
            }
        rows.append(entry)
    return pd.DataFrame(rows).set_index("week")


def _expected_auc(w: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Expected ROC-AUC if each row is positive with probability its score, per row of
    weights ``w``: the expected concordant pairs over the expected positive-negative
    pairs (ties count half; a row is never paired with itself)."""
    order, run_start, run_end = Scored.at_review_rate(score, 0.5).ranks
    s = score[order]
    ws = np.take(w, order, axis=1)
    negative = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(ws * (1 - s), axis=1)], axis=1)
    below = negative[:, run_start]
    tied = negative[:, run_end] - below
    own = (ws * s * (1 - s)).sum(axis=1)
    concordant = (ws * s * (below + 0.5 * tied)).sum(axis=1) - 0.5 * own
    pairs = (ws * s).sum(axis=1) * (ws * (1 - s)).sum(axis=1) - own
    return np.asarray(concordant / pairs)


def expected_auc(score: np.ndarray, settings: Settings) -> Estimate:
    """ROC-AUC expected if the scores are calibrated, with a bootstrap interval."""
    score = np.asarray(score, dtype=float)
    boot = settings.evaluation.bootstrap
    point = float(_expected_auc(np.ones((1, score.size)), score)[0])
    draws = np.concatenate(
        [_expected_auc(w, score) for w in resample_weights(score.size, boot.n_resamples, boot.seed)]
    )
    return interval(point, draws, boot.confidence)
