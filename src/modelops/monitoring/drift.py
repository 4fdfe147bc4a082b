"""Data and prediction drift: a window's binned counts against the reference profile.

Per feature, two questions, both from the bins alone (counts, and sums for numbers):

1. **Did the distribution change at all?** A chi-square test of homogeneity on the
   2 x k table of reference and window counts (bins empty in both dropped); for a
   number also a z-test of its mean from the bin sums (a shift within the bins of a
   feature with few distinct values moves no count), the smaller p-value doubled. One test
   serves numbers and categories alike, sees every kind of change the bins can show
   (location, spread, shape, tails, nulls, unseen levels), and needs only the counts the
   profile stores. A binned two-sample KS would miss changes in the null and unseen
   bins and is conservative on ties. Across features, Benjamini-Hochberg keeps the
   false-discovery rate at the check's share of ``monitoring.false_alarm_rate``
   (``scipy.stats.false_discovery_control``; with nothing changed, that is the chance
   of any false alarm).
2. **Is the change big enough to matter?** On a large window every shift is
   significant, so a feature drifts only when its effect reaches the smallest effect
   worth an alarm too (``min_effect``, ``min_effect_category``). These distances sum
   absolute differences of noisy shares, so their plain estimates are biased upwards,
   the more so the smaller the window; the estimate used is bias-corrected by the
   bootstrap (twice the plain estimate minus the resamples' mean), and its interval is
   the matching basic bootstrap interval. The rule compares the corrected estimate,
   not the interval's lower bound: the test has already shown the change is real, and
   the lower bound, which the same bias pushes down, missed 3 of 6 new categories at
   1 % of rows (twice the minimum) in a pilot on week-sized windows
   (bench/drift_power.py).

   - numeric: the Wasserstein-1 distance between reference and window with each bin's
     rows at the bin's mean (the profile keeps each bin's sum, and so do the window's
     counts), in reference SDs: a shift of the mean by d SDs gives about d, heavy tails
     included, since the open outer bins' means move too (edges alone would cap the
     distance at the last cut point). Nulls are measured apart, as the change in the
     null share (``min_effect_category``), since they have no position.
   - categorical: the total-variation distance, the share of rows that would have to
     move between levels (unseen and null bins included).

   Intervals: a parametric bootstrap of both count vectors (multinomial draws at the
   observed shares, all resamples at once, ``drift.n_resamples``), basic intervals at
   ``drift.confidence``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from modelops.config import DriftSettings
from modelops.monitoring.counts import PredictionCounts, WindowCounts
from modelops.monitoring.profile import Binned, Distribution, Kind, Profile

TOP_MOVED = 3  # bins named in a feature's explanation


@dataclass(frozen=True)
class Effect:
    """An effect size with its interval, against the smallest effect worth an alarm."""

    measure: str  # wasserstein_sd | total_variation | null_share
    estimate: float  # bias-corrected
    low: float
    high: float
    minimum: float

    @property
    def large(self) -> bool:
        """The estimate reaches the minimum: not negligible."""
        return self.estimate >= self.minimum


@dataclass(frozen=True)
class MovedBin:
    """A bin whose share changed, for the explanation."""

    label: str
    reference_share: float
    current_share: float


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's comparison. ``q_value`` is None for a window too small to judge;
    ``drifted``: judged, ``q_value <= fdr`` and an effect (or, for a number, the change
    of its null share) reaches its minimum."""

    feature: str
    kind: Kind
    n_ref: int
    n_cur: int
    statistic: float  # chi-square
    dof: int
    p_value: float
    q_value: float | None  # BH-adjusted across the window's features
    effect: Effect | None  # None: no values to compare (all null on a side)
    null_effect: Effect | None  # numeric only: the change of the null share
    judged: bool
    drifted: bool
    moved: tuple[MovedBin, ...]


@dataclass(frozen=True)
class DriftResult:
    """Every feature's comparison for one window."""

    rows: int
    judged: bool  # False: fewer than ``min_rows`` rows, reported only
    fdr: float
    features: tuple[FeatureDrift, ...]

    @property
    def drifted(self) -> list[str]:
        """The features that drifted."""
        return [f.feature for f in self.features if f.drifted]


@dataclass(frozen=True)
class PredictionDrift:
    """One model version's and route's scores and decisions against the holdout's."""

    model_version: str
    route: str
    score: FeatureDrift  # judged on its own: not part of the features' FDR
    decision_rates: dict[str, tuple[float, float]]  # decision: (holdout, window) share


def homogeneity(reference: np.ndarray, current: np.ndarray) -> tuple[float, int, float]:
    """Chi-square statistic, degrees of freedom and p-value of the 2 x k table."""
    table = np.vstack([reference, current])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), int(result.dof), float(result.pvalue)


def mean_shift_p(reference: Distribution, window: Binned) -> float:
    """Two-sided p-value of a z-test that the window's mean (its bin sums over its
    non-null rows) equals the reference's, with the reference's SD: it sees a shift that
    stays within the bins of a feature with few distinct values, which the bin counts
    cannot."""
    rows = sum(window.counts[:-1])
    present = reference.rows - reference.nulls
    if rows == 0 or present == 0 or not reference.sd or reference.mean is None:
        return 1.0
    error = reference.sd * np.sqrt(1 / rows + 1 / present)
    z = (sum(window.sums) / rows - reference.mean) / error
    return float(2 * stats.norm.sf(abs(z)))


def _shares(counts: np.ndarray) -> np.ndarray:
    """Rows of ``counts`` as shares (a row of zeros stays zero)."""
    totals = counts.sum(axis=-1, keepdims=True)
    return counts / np.where(totals == 0, 1, totals)


def bin_means(binned: Binned) -> np.ndarray:
    """The mean value in each non-null bin (0 in an empty one: it weighs nothing)."""
    counts = np.asarray(binned.counts[:-1], dtype=float)
    return np.asarray(binned.sums, dtype=float) / np.where(counts == 0, 1, counts)


def wasserstein_sd(
    reference: Distribution,
    ref: np.ndarray,
    cur: np.ndarray,
    ref_means: np.ndarray,
    cur_means: np.ndarray,
) -> np.ndarray:
    """The Wasserstein-1 distance in reference SDs between the two distributions with
    each bin's rows at the bin's mean, per row of the non-null counts ``ref`` and
    ``cur`` (shape (..., bins)); all rows share the bins' means."""
    positions = np.concatenate([ref_means, cur_means])
    order = np.argsort(positions, kind="stable")
    weights = np.concatenate([_shares(ref), -_shares(cur)], axis=-1)[..., order]
    cdf_gap = np.abs(np.cumsum(weights, axis=-1)[..., :-1])
    distance: np.ndarray = (cdf_gap * np.diff(positions[order])).sum(axis=-1)
    if not reference.sd:
        return np.where(distance > 0, np.inf, 0.0)
    return distance / reference.sd


def total_variation(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Half the sum of absolute share differences, per row."""
    distance: np.ndarray = 0.5 * np.abs(_shares(ref) - _shares(cur)).sum(axis=-1)
    return distance


def null_share_change(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """The change of the null share (the last bin), per row."""
    change: np.ndarray = np.abs(_shares(ref)[..., -1] - _shares(cur)[..., -1])
    return change


def effects(
    reference: Distribution, window: Binned, settings: DriftSettings
) -> tuple[Effect | None, Effect | None]:
    """The feature's effect (and, numeric, its null-share effect), bias-corrected and
    with basic bootstrap intervals, from multinomial resamples of both count vectors
    (the bins' means held fixed)."""
    ref = np.asarray(reference.counts, dtype=np.int64)
    current = np.asarray(window.counts, dtype=np.int64)
    rng = np.random.default_rng(settings.seed)
    size = settings.n_resamples
    ref_boot = rng.multinomial(ref.sum(), _shares(ref), size=size)
    cur_boot = rng.multinomial(current.sum(), _shares(current), size=size)
    alpha = 1 - settings.confidence

    def effect(measure: str, point: float, boot: np.ndarray, minimum: float) -> Effect:
        lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
        corrected = max(2 * point - float(boot.mean()), 0.0)
        low, high = max(2 * point - hi, 0.0), max(2 * point - lo, 0.0)
        return Effect(measure, corrected, float(low), float(high), minimum)

    if reference.kind == "categorical":
        point = float(total_variation(ref, current))
        boot = total_variation(ref_boot, cur_boot)
        return effect("total_variation", point, boot, settings.min_effect_category), None
    null = effect(
        "null_share",
        float(null_share_change(ref, current)),
        null_share_change(ref_boot, cur_boot),
        settings.min_effect_category,
    )
    if ref[:-1].sum() == 0 or current[:-1].sum() == 0:
        return None, null
    means = bin_means(reference.binned), bin_means(window)
    point = float(wasserstein_sd(reference, ref[:-1], current[:-1], *means))
    boot = wasserstein_sd(reference, ref_boot[:, :-1], cur_boot[:, :-1], *means)
    return effect("wasserstein_sd", point, boot, settings.min_effect), null


def moved_bins(reference: Distribution, current: np.ndarray) -> tuple[MovedBin, ...]:
    """The bins whose share changed most."""
    ref_share = _shares(np.asarray(reference.counts, dtype=float))
    cur_share = _shares(current.astype(float))
    order = np.argsort(-np.abs(cur_share - ref_share), kind="stable")[:TOP_MOVED]
    labels = reference.labels
    return tuple(
        MovedBin(labels[i], float(ref_share[i]), float(cur_share[i]))
        for i in order
        if ref_share[i] != cur_share[i]
    )


def compare_distribution(
    reference: Distribution, window: Binned, settings: DriftSettings, alpha: float
) -> FeatureDrift:
    """One distribution's test (at level ``alpha``), effects and explanation; its q-value
    is its p-value and it is judged on its own (``compare`` adjusts across features)."""
    current = np.asarray(window.counts, dtype=np.int64)
    sums_needed = len(current) - 1 if reference.kind == "numeric" else 0
    if len(current) != len(reference.counts) or len(window.sums) != sums_needed:
        raise ValueError(
            f"{reference.name}: {len(current)} counts and {len(window.sums)} sums for "
            f"{len(reference.counts)} bins"
        )
    statistic, dof, p = homogeneity(np.asarray(reference.counts), current)
    if reference.kind == "numeric":  # a shift within bins: the bin sums' mean sees it
        p = min(1.0, 2 * min(p, mean_shift_p(reference, window)))  # Bonferroni over both
    effect, null_effect = effects(reference, window, settings)
    judged = int(current.sum()) >= settings.min_rows
    return FeatureDrift(
        feature=reference.name,
        kind=reference.kind,
        n_ref=reference.rows,
        n_cur=int(current.sum()),
        statistic=statistic,
        dof=dof,
        p_value=p,
        q_value=p if judged else None,
        effect=effect,
        null_effect=null_effect,
        judged=judged,
        drifted=judged and p <= alpha and _large(effect, null_effect),
        moved=moved_bins(reference, current),
    )


def _large(effect: Effect | None, null_effect: Effect | None) -> bool:
    return any(e is not None and e.large for e in (effect, null_effect))


def compare(
    profile: Profile, counts: WindowCounts, settings: DriftSettings, fdr: float
) -> DriftResult:
    """Every feature of the window against the profile, with Benjamini-Hochberg
    q-values across features; a feature drifts when its q-value is at most ``fdr`` and
    its (bias-corrected) effect reaches its minimum."""
    single = [
        compare_distribution(reference, counts.features[name], settings, fdr)
        for name, reference in profile.features.items()
    ]
    judged = counts.rows >= settings.min_rows
    if not judged:
        return DriftResult(counts.rows, False, fdr, tuple(single))
    q_values = stats.false_discovery_control([f.p_value for f in single], method="bh")
    features = tuple(
        replace(f, q_value=float(q), drifted=q <= fdr and _large(f.effect, f.null_effect))
        for f, q in zip(single, q_values, strict=True)
    )
    return DriftResult(counts.rows, True, fdr, features)


def prediction_drift(
    profile: Profile, counts: PredictionCounts, settings: DriftSettings, alpha: float
) -> PredictionDrift:
    """A version's and route's scores against the holdout's (a test at level
    ``alpha``), and its decision rates beside the holdout's (at the version's own
    thresholds, partial automation)."""
    rows = max(counts.rows, 1)
    decisions = sorted(set(profile.decisions.rates) | set(counts.decisions))
    return PredictionDrift(
        model_version=counts.model_version,
        route=counts.route,
        score=compare_distribution(profile.score, counts.score, settings, alpha),
        decision_rates={
            d: (profile.decisions.rates.get(d, 0.0), counts.decisions.get(d, 0) / rows)
            for d in decisions
        },
    )
