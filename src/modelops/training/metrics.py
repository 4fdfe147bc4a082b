"""Holdout metrics, vectorized over bootstrap resamples.

``compute_metrics`` takes a weight matrix ``w`` of shape (resamples, rows): row ``b``
holds how many times each holdout row was drawn in resample ``b``. A single row of ones
gives the plain point estimate, so estimates and intervals come from one code path
(tested against scikit-learn with ``sample_weight``). Scoring two models with the same
``w`` gives a *paired* bootstrap of their difference. Ranking metrics use one sort per
model and cumulative sums, so all resamples of a chunk cost about one scikit-learn call
each (bench/bootstrap_bench.py measures the gain).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from modelops.metric_registry import METRICS as REGISTRY

EPS = 1e-15
METRICS = tuple(REGISTRY)  # every metric compute_metrics returns, in report order
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Holdout:
    """Labels and the cost of each decision, row-aligned with every model's scores."""

    y: np.ndarray  # 0/1 labels
    missed_cost: np.ndarray  # what a positive the model did not flag costs, per row
    false_alarm_cost: np.ndarray  # what a flagged negative costs, per row
    action_cost: float = 0.0  # what acting on any flagged row costs

    def subset(self, mask: np.ndarray) -> Holdout:
        """Some of the rows."""
        return Holdout(
            self.y[mask], self.missed_cost[mask], self.false_alarm_cost[mask], self.action_cost
        )


@dataclass(frozen=True)
class Scored:
    """One model's scores on a holdout, its decision threshold, which rows it flags, and
    each row's calibration bin (score quantiles, for the expected calibration error)."""

    score: np.ndarray
    threshold: float
    flagged: np.ndarray
    bins: np.ndarray

    @classmethod
    def at_review_rate(
        cls, score: np.ndarray, rate: float, calibration_bins: int = CALIBRATION_BINS
    ) -> Scored:
        """Flag exactly the top ``rate`` share of rows (ties broken by row order, so a
        constant score still flags ``rate`` of the rows); the threshold is the lowest
        flagged score."""
        k = max(1, int(np.ceil(rate * score.size)))
        top = np.argsort(-score, kind="stable")[:k]
        flagged = np.zeros(score.size, dtype=bool)
        flagged[top] = True
        edges = np.quantile(score, np.linspace(0, 1, calibration_bins + 1)[1:-1])
        bins = np.searchsorted(edges, score, side="right")
        return cls(score, float(score[top[-1]]), flagged, bins)

    def subset(self, mask: np.ndarray) -> Scored:
        """The same decisions restricted to some rows."""
        return Scored(self.score[mask], self.threshold, self.flagged[mask], self.bins[mask])

    @cached_property
    def ranks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ascending order of scores, and for each row in that order the first and
        one-past-last position of its run of tied scores."""
        order = np.argsort(self.score, kind="stable")
        ordered = self.score[order]
        new_run = np.r_[True, ordered[1:] != ordered[:-1]]
        run_id = np.cumsum(new_run) - 1
        run_starts = np.flatnonzero(new_run)
        run_ends = np.r_[run_starts[1:], ordered.size]
        return order, run_starts[run_id], run_ends[run_id]


def _before(cum: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Cumulative sum up to (not including) each position; zero at position 0."""
    padded = np.concatenate([np.zeros((cum.shape[0], 1), cum.dtype), cum], axis=1)
    return padded[:, positions]


def compute_metrics(w: np.ndarray, h: Holdout, s: Scored) -> dict[str, np.ndarray]:
    """Every metric in ``METRICS`` for each row of ``w``."""
    dtype = w.dtype
    y = h.y.astype(dtype)
    order, run_start, run_end = s.ranks
    ws = np.take(w, order, axis=1)
    is_pos = h.y[order] == 1
    pos_at = np.flatnonzero(is_pos)  # sorted positions of positive rows
    total_cum = np.cumsum(ws, axis=1)
    pos_cum = np.cumsum(ws[:, pos_at], axis=1)
    # positives strictly before a position p: searchsorted(pos_at, p)
    start, end = run_start[pos_at], run_end[pos_at]
    pos_below = _before(pos_cum, np.searchsorted(pos_at, start))
    pos_through = _before(pos_cum, np.searchsorted(pos_at, end))
    total_below = _before(total_cum, start)
    total_through = _before(total_cum, end)
    neg_below = total_below - pos_below
    neg_tied = (total_through - pos_through) - neg_below
    w_pos = ws[:, pos_at]
    n_pos = w_pos.sum(axis=1)
    n_all = w.sum(axis=1)
    n_neg = n_all - n_pos

    # ROC-AUC: each positive beats the negatives below it, half of those tied with it.
    auc = (w_pos * (neg_below + 0.5 * neg_tied)).sum(axis=1) / (n_pos * n_neg)
    # Average precision: precision at each positive's threshold (its whole tie run flagged).
    flagged = n_all[:, None] - total_below
    caught = n_pos[:, None] - pos_below
    ap = (w_pos * caught / np.maximum(flagged, EPS)).sum(axis=1) / n_pos

    flag = s.flagged
    caught_at_threshold = w @ (y * flag)
    p = np.clip(s.score, EPS, 1 - EPS)
    log_loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    cost = y * ~flag * h.missed_cost + (1 - y) * flag * h.false_alarm_cost + flag * h.action_cost
    # expected calibration error: per score-quantile bin, |labels - scores| summed, over rows
    gap = np.zeros((h.y.size, int(s.bins.max()) + 1), dtype)
    gap[np.arange(h.y.size), s.bins] = h.y - s.score
    return {
        "roc_auc": auc,
        "average_precision": ap,
        "recall_at_review_rate": caught_at_threshold / n_pos,
        "precision_at_review_rate": caught_at_threshold / np.maximum(w @ flag.astype(dtype), EPS),
        "log_loss": (w @ log_loss.astype(dtype)) / n_all,
        "brier": (w @ ((s.score - y) ** 2).astype(dtype)) / n_all,
        "cost_per_1k": 1000 * (w @ cost.astype(dtype)) / n_all,
        "ece": np.abs(w @ gap).sum(axis=1) / n_all,
    }


def point_estimates(h: Holdout, s: Scored) -> dict[str, float]:
    """Metrics on the holdout as it is."""
    ones = np.ones((1, h.y.size))
    return {k: float(v[0]) for k, v in compute_metrics(ones, h, s).items()}


def resample_weights(
    n_rows: int, n_resamples: int, seed: int, chunk: int = 50
) -> Iterator[np.ndarray]:
    """Bootstrap count matrices (float32), ``chunk`` resamples at a time."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        draws = rng.integers(0, n_rows, size=(size, n_rows), dtype=np.int32)
        counts = np.empty((size, n_rows), np.float32)
        for row, drawn in zip(counts, draws, strict=True):
            row[:] = np.bincount(drawn, minlength=n_rows)
        yield counts
        done += size


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float

    def as_dict(self, digits: int = 6) -> dict[str, float]:
        """JSON-friendly, rounded."""
        return {k: round(v, digits) for k, v in vars(self).items()}


def improvement(difference: Estimate, metric: str) -> Estimate:
    """A paired difference re-signed so that positive always means better."""
    if REGISTRY[metric].higher_is_better:
        return difference
    return Estimate(-difference.value, -difference.ci_high, -difference.ci_low)


def interval(point: float, draws: np.ndarray, confidence: float) -> Estimate:
    """Percentile interval of bootstrap draws around a point estimate."""
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(draws, [alpha, 1 - alpha])
    return Estimate(float(point), float(low), float(high))


@dataclass(frozen=True)
class BootstrapResult:
    """Point estimates and resampled values for several models on shared resamples."""

    points: dict[str, dict[str, float]]  # model -> metric -> value
    draws: dict[str, dict[str, np.ndarray]]  # model -> metric -> one value per resample
    confidence: float

    def estimate(self, model: str, metric: str) -> Estimate:
        """A model's metric with its interval."""
        return interval(self.points[model][metric], self.draws[model][metric], self.confidence)

    def difference(self, model: str, reference: str, metric: str) -> Estimate:
        """``model`` minus ``reference``, paired on the same resamples."""
        point = self.points[model][metric] - self.points[reference][metric]
        diff = self.draws[model][metric] - self.draws[reference][metric]
        return interval(point, diff, self.confidence)


def in_slice(model: str, name: str) -> str:
    """The result key of a model's metrics restricted to a slice's rows."""
    return f"{model}@{name}"


def bootstrap(
    holdout: Holdout,
    models: dict[str, Scored],
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
    progress: Callable[[int], object] | None = None,
    slices: Mapping[str, np.ndarray] | None = None,
) -> BootstrapResult:
    """Score every model on the same ``n_resamples`` resamples of the holdout. Each of
    ``slices`` (name -> row mask) that holds both classes is scored on the same resamples
    restricted to its rows, under ``in_slice(model, name)``, so slice differences are
    paired too."""
    parts: dict[str, tuple[Holdout, Scored, np.ndarray | None]] = {
        name: (holdout, s, None) for name, s in models.items()
    }
    for key, rows in (slices or {}).items():
        if not 0 < holdout.y[rows].sum() < rows.sum():
            continue
        for name, s in models.items():
            parts[in_slice(name, key)] = (holdout.subset(rows), s.subset(rows), rows)
    points = {name: point_estimates(h, s) for name, (h, s, _) in parts.items()}
    collected: dict[str, dict[str, list[np.ndarray]]] = {
        name: {k: [] for k in METRICS} for name in parts
    }
    for w in resample_weights(holdout.y.size, n_resamples, seed):
        for name, (h, s, mask) in parts.items():
            # a resample may draw no positive of a small slice: its ranking metrics are nan
            with np.errstate(divide="ignore", invalid="ignore"):
                got = compute_metrics(w if mask is None else w[:, mask], h, s)
            for k, v in got.items():
                collected[name][k].append(v)
        if progress:
            progress(w.shape[0])
    draws = {name: {k: np.concatenate(v) for k, v in d.items()} for name, d in collected.items()}
    return BootstrapResult(points, draws, confidence)
