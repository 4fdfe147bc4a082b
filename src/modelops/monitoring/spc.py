"""Control charts over a sequence of windows: the positive rate, the flag rate, the mean
score and key features' means, each against the model version's reference.

The chart is a two-sided CUSUM rather than an EWMA: for a step shift of a known size
delta (a new upstream feed, a changed population) the CUSUM with reference value
k = delta / 2 detects it in the fewest windows for a given false-alarm rate (Lorden,
Moustakides), its two settings map one-to-one onto ``monitoring.control`` (``shift_sd``
gives k, ``arl`` gives h), and its average run length has a closed-form approximation,
so h is computed, not simulated. An EWMA reacts a little sooner to very small drifts
but needs its own smoothing constant and a simulated or tabulated limit.

Each window's statistic x (a mean, or a rate) is standardised by the reference:
z = (x - mean) / se, se = sqrt(sd^2 / rows + between_sd^2), where ``rows`` are the
window's rows and ``between_sd`` the spread of window means beyond sampling noise
(0: windows differ only by sampling; real streams often need more, or every big window
alarms). Then S+ = max(0, S+ + z - k), S- = max(0, S- - z - k), and a window alarms when
either exceeds h. A window without the statistic (no rows, or labels not mature) leaves
the sums as they were. The sums are not reset after an alarm: a chart keeps alarming
while the shift lasts, which is what the k-of-n rule counts; a new model version brings
a new reference and a new chart.

h comes from Siegmund's approximation of the CUSUM's average run length for normal
increments (one-sided ARL = (exp(-2 d b) + 2 d b - 1) / (2 d^2), d = shift - k,
b = h + 1.166; the two sides combine as 1/ARL = 1/ARL+ + 1/ARL-), within a few percent
of simulation for ARLs of 50 and more (tests/monitoring/test_spc.py measures it). The
standardised statistic is close to normal when windows are large (a rate needs some
ten events per window). Several charts share the false-alarm budget: each is calibrated
to ``arl`` times the number of charts, so that all of them together raise a false alarm
no more often than once per ``arl`` windows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.optimize import brentq

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
        return (math.exp(-2 * delta * b) + 2 * delta * b - 1) / (2 * delta * delta)

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

    @classmethod
    def rate(cls, share: float, between_sd: float = 0.0) -> InControl:
        """A share of rows (positives, flags): per-row SD sqrt(p (1 - p))."""
        return cls(share, math.sqrt(share * (1 - share)), between_sd)

    def standardise(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Each window's statistic in standard errors from the in-control mean (nan for
        a window without rows)."""
        rows = np.asarray(rows, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.sqrt(self.sd**2 / rows + self.between_sd**2)
            z = (np.asarray(values, dtype=float) - self.mean) / se
        return np.where(rows > 0, z, np.nan)


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
    """A chart per column of ``means`` that ``in_control`` describes, the decision
    interval shared out so that all charts together keep ``settings.arl``."""
    names = [name for name in means.columns if name in in_control]
    k = settings.shift_sd / 2
    h = decision_interval(settings.arl * max(len(names), 1), k)
    charts = {}
    for name in names:
        value = means[name].to_numpy(dtype=float)
        count = rows[name].to_numpy(dtype=float)
        z = in_control[name].standardise(value, count)
        upper, lower = cusum(z, k)
        charts[name] = Chart(name, means.index, value, count, z, upper, lower, h)
    return charts


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
