"""Control charts over a sequence of windows: the positive rate, the flag rate, the mean
score and key features' means, each against the model version's reference.

The chart is a two-sided CUSUM rather than an EWMA: for a step shift of a known size
delta (a new upstream feed, a changed population) the CUSUM with reference value
k = delta / 2 detects it in the fewest windows for a given false-alarm rate (Lorden,
Moustakides), its two settings follow from ``monitoring.control`` (``shift_sd`` and
``arl``, below), and its average run length has a closed-form approximation,
so h is computed, not simulated. An EWMA reacts a little sooner to very small drifts
but needs its own smoothing constant and a simulated or tabulated limit.

Each window's statistic x (a mean, or a rate) is standardised by the reference:
z = (x - mean) / se, se = sqrt(sd^2 / rows + between_sd^2 + reference_se^2), where
``rows`` are the window's rows, ``between_sd`` the spread of window means beyond
sampling noise (0: windows differ only by sampling; real streams often need more, or
every big window alarms) and ``reference_se`` the in-control mean's own sampling error.
Then S+ = max(0, S+ + z - k), S- = max(0, S- - z - k), and a window alarms when either
exceeds h. A window without the statistic (no rows, or labels not mature) leaves the
sums as they were. The sums are not reset after an alarm: a chart keeps alarming while
the shift lasts, which is what the k-of-n rule counts; a new model version brings a new
reference and a new chart.

The calibration is per check: with nothing changed, all charts together alarm in the
latest window with probability at most 1 / ``arl`` (arl 365: one false alarm per year
of daily checks), each of m charts taking 1 / (arl m). Two things would break a
calibration by the textbook ARL alone, and both are allowed for:

- The reference's error is the same in every window, so the z's share an offset (r c
  with c standard normal and r = reference_se / se, about 0.28 for a week of 30,000
  rows against 360,000 training rows); a CUSUM adds it up window after window
  (bench/control_calibration.py, 26 such windows: 2.9 % of checks alarmed at the h
  meant for 0.018 %, one chart's share of 15). Half the chart's share bounds the
  offset: k is widened by z(1 - share / 4) r (the largest r of the windows charted), so
  unless the offset is more extreme than that, each increment drifts down at least as
  fast as the textbook chart's. A reference known exactly (r = 0) leaves k as it is
  and the whole share to the next point.
- A chart that alarms keeps alarming for a while, so the latest window alarms more
  often than once per ARL windows. The chance of a first alarm within the T windows
  charted is about T / ARL (T much smaller than the ARL), so h is set for an ARL of
  T / share (T / (share / 2) when half went to the offset).

So ``shift_sd`` and ``arl`` set k and h together with the number of charts, the
windows charted and the reference's size.

h comes from Siegmund's approximation of the CUSUM's average run length for normal
increments (one-sided ARL = (exp(-2 d b) + 2 d b - 1) / (2 d^2), d = shift - k,
b = h + 1.166; the two sides combine as 1/ARL = 1/ARL+ + 1/ARL-), within a few percent
of simulation for ARLs of 50 and more (tests/monitoring/test_spc.py measures it and the
per-check rate). The standardised statistic is close to normal when windows are large
(a rate needs some ten events per window). The price of the bounds is power for shifts
of one or two window SEs; on a week of the example that is a hundredth of an SD, far
below what `monitoring.drift` counts as worth an alarm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import norm

from modelops.config import ControlSettings
from modelops.errors import InputError
from modelops.schema import Schema

SIEGMUND_CORRECTION = 1.166  # b = h + 1.166: the overshoot of a normal random walk
POSITIVE_RATE = "positive_rate"  # among labelled rows of mature windows
FLAG_RATE = "flag_rate"  # scores at or above the version's decision threshold
MEAN_SCORE = "mean_score"


def siegmund_arl(h: float, k: float, shift: float = 0.0) -> float:
    """Average windows until a two-sided CUSUM with reference ``k`` and decision
    interval ``h`` alarms, when the standardised statistic's mean is ``shift``."""

    def one_sided(delta: float) -> float:
        b = h + SIEGMUND_CORRECTION
        if abs(delta) < 1e-9:
            return b * b
        exponent = min(-2 * delta * b, 700.0)  # beyond: an ARL past any horizon
        return (math.exp(exponent) + 2 * delta * b - 1) / (2 * delta * delta)

    return 1 / (1 / one_sided(shift - k) + 1 / one_sided(-shift - k))


@lru_cache(maxsize=64)
def decision_interval(arl: float, k: float) -> float:
    """The h whose in-control two-sided ARL (Siegmund) is ``arl`` (0 if even h = 0 alarms
    less often)."""
    if siegmund_arl(0.0, k) >= arl:
        return 0.0
    return float(brentq(lambda h: siegmund_arl(h, k) - arl, 0.0, 100.0, xtol=1e-9))


@dataclass(frozen=True)
class InControl:
    """A statistic's in-control mean and per-row SD, from the version's reference, and
    the SD of window means beyond sampling noise."""

    mean: float
    sd: float
    between_sd: float = 0.0
    reference_se: float = 0.0  # the in-control mean's own sampling error

    @classmethod
    def rate(cls, share: float, reference_rows: int) -> InControl:
        """A share of rows (positives, flags) measured on ``reference_rows`` rows: per-row
        SD sqrt(p (1 - p))."""
        sd = math.sqrt(share * (1 - share))
        return cls(share, sd, reference_se=sd / math.sqrt(max(reference_rows, 1)))

    def errors(self, rows: np.ndarray) -> np.ndarray:
        """Each window's standard error of the statistic about the in-control mean."""
        with np.errstate(divide="ignore"):
            variance = self.sd**2 / np.asarray(rows, dtype=float)
        return np.sqrt(variance + self.between_sd**2 + self.reference_se**2)

    def standardise(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Each window's statistic in standard errors from the in-control mean (nan for
        a window without rows)."""
        rows = np.asarray(rows, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (np.asarray(values, dtype=float) - self.mean) / self.errors(rows)
        return np.where(rows > 0, z, np.nan)

    def offset_share(self, rows: np.ndarray) -> float:
        """The largest share r of a window's standard error that is the reference's (the
        offset every window shares), over windows with rows."""
        rows = np.asarray(rows, dtype=float)
        seen = rows[rows > 0]
        if not seen.size or self.reference_se == 0:
            return 0.0
        return float(np.max(self.reference_se / self.errors(seen)))


def cusum(z: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower CUSUM sums along the last axis (windows); nan windows carry the
    sums over. Leading axes are independent streams."""
    upper, lower = np.zeros_like(z, dtype=float), np.zeros_like(z, dtype=float)
    up = low = np.zeros(z.shape[:-1])
    for t in range(z.shape[-1]):
        step = z[..., t]
        seen = ~np.isnan(step)
        up = np.where(seen, np.maximum(0.0, up + step - k), up)
        low = np.where(seen, np.maximum(0.0, low - step - k), low)
        upper[..., t], lower[..., t] = up, low
    return upper, lower


@dataclass(frozen=True)
class Chart:
    """One statistic's CUSUM chart over the windows."""

    name: str
    windows: pd.Index
    value: np.ndarray  # the window's statistic (nan: not available)
    rows: np.ndarray
    z: np.ndarray  # standard errors from the in-control mean
    upper: np.ndarray
    lower: np.ndarray
    k: float  # the reference value, widened for the reference's offset
    h: float

    @property
    def alarms(self) -> np.ndarray:
        """Per window: either sum beyond h."""
        return (self.upper > self.h) | (self.lower > self.h)

    def frame(self) -> pd.DataFrame:
        """The chart as a table, one row per window."""
        return pd.DataFrame(
            {
                "value": self.value,
                "rows": self.rows,
                "z": self.z,
                "upper": self.upper,
                "lower": self.lower,
                "k": self.k,
                "h": self.h,
                "alarm": self.alarms,
            },
            index=self.windows,
        )


def window_means(
    frame: pd.DataFrame, window: str, columns: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per window (the values of column ``window``, ascending): each column's mean and
    its count of non-missing rows."""
    grouped = frame.groupby(window, sort=True)[list(columns)]
    return grouped.mean(), grouped.count()


def log_statistics(
    outcomes: pd.DataFrame, window: str, threshold: float, mature: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The prediction log's charted statistics per window: positive rate among labelled
    rows (only in windows ``mature`` marks True: elsewhere the classes may not have
    arrived alike), the share of scores at or above ``threshold`` (the version's own
    decision threshold; served decisions also depend on the automation degree), and
    the mean score. ``outcomes`` is labels.load_outcomes' frame with a window column."""
    is_mature = outcomes[window].map(mature).fillna(False).astype(bool)
    statistics = pd.DataFrame(
        {
            window: outcomes[window],
            POSITIVE_RATE: outcomes["label"].where(is_mature),
            FLAG_RATE: (outcomes["score"] >= threshold).astype(float),
            MEAN_SCORE: outcomes["score"],
        }
    )
    return window_means(statistics, window, [POSITIVE_RATE, FLAG_RATE, MEAN_SCORE])


def control_charts(
    means: pd.DataFrame,
    rows: pd.DataFrame,
    in_control: Mapping[str, InControl],
    settings: ControlSettings,
) -> dict[str, Chart]:
    """A chart per column of ``means`` that ``in_control`` describes, each calibrated
    to its share of one false alarm per ``settings.arl`` checks (module docstring)."""
    names = [name for name in means.columns if name in in_control]
    share = 1 / (settings.arl * max(len(names), 1))
    charts = {}
    for name in names:
        value = means[name].to_numpy(dtype=float)
        count = rows[name].to_numpy(dtype=float)
        expected = in_control[name]
        z = expected.standardise(value, count)
        k, h = calibrate(settings.shift_sd / 2, share, expected.offset_share(count), count)
        upper, lower = cusum(z, k)
        charts[name] = Chart(name, means.index, value, count, z, upper, lower, k, h)
    return charts


def calibrate(k: float, share: float, offset: float, rows: np.ndarray) -> tuple[float, float]:
    """The reference value and decision interval that keep a chart's false alarms in the
    latest window under ``share`` per check: ``offset`` (r) widens k, and h allows for a
    first alarm in any of the windows charted (those with rows)."""
    windows = max(int((np.nan_to_num(rows) > 0).sum()), 1)
    if offset > 0:
        share /= 2  # half for the offset, half for the run
        k += float(norm.isf(share / 2)) * offset
    return k, decision_interval(windows / share, k)


def alarming(charts: Mapping[str, Chart]) -> np.ndarray:
    """Per window: does any chart alarm."""
    flags = [chart.alarms for chart in charts.values()]
    return np.logical_or.reduce(flags) if flags else np.zeros(0, dtype=bool)


def charted_features(settings: ControlSettings, schema: Schema) -> list[str]:
    """The features to chart: ``settings.features``, or every numeric one when empty."""
    numeric = schema.numeric_features
    unknown = [name for name in settings.features if name not in numeric]
    if unknown:
        raise InputError(
            f"monitoring.control.features: {unknown} are not numeric features of "
            f"schema.columns (numeric: {numeric})"
        )
    return list(settings.features) or numeric


@dataclass(frozen=True)
class KOfN:
    """The k-of-n rule over the latest windows."""

    count: int  # alarming windows among the last ``of_last``
    alarms: int
    of_last: int

    @property
    def trips(self) -> bool:
        """Enough alarming windows to call for retraining."""
        return self.count >= self.alarms


def k_of_n(alarms_per_window: Sequence[bool] | np.ndarray, alarms: int, of_last: int) -> KOfN:
    """How many of the last ``of_last`` windows (in time order) alarmed, against
    ``alarms``."""
    latest = np.asarray(alarms_per_window, dtype=bool)[-of_last:]
    return KOfN(int(latest.sum()), alarms, of_last)
