"""The reference profile of a model version: what its inputs and scores looked like.

Monitoring compares live windows with it (drift.py, upstream.py) through binned counts
only, so the profile holds counts, never rows. Per feature of the schema:

- numeric (int, float): cut points at the training rows' quantiles (``drift.bins``), the
  count and the sum of the values per bin plus a null bin, and the mean, SD, min and
  max; with a time column, also the spread of the weekly means beyond sampling noise
  (``between_sd``: the control charts count that much week-to-week change as usual).
  Bin ``i`` holds ``cuts[i-1] <= x < cuts[i]``; the outer bins are open, so any live
  value has a bin.
- categorical (category, bool): the count per level plus an "unseen" and a null bin.

Plus the holdout's score distribution (the same quantile binning) and its decision
rates at the version's thresholds (lineage.json), for prediction drift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_bool_dtype, is_numeric_dtype

from modelops.io import read_json, write_json
from modelops.schema import ColumnType, Schema

Kind = Literal["numeric", "categorical"]
NUMBERS = (ColumnType.INT, ColumnType.FLOAT)
BOOL_LEVELS = ("false", "true")  # a bool's levels, in the order of its codes
UNSEEN, NULL = "unseen", "null"
SCORE = "score"  # the name of the score's distribution in drift results


@dataclass(frozen=True)
class Binned:
    """A column's rows per bin, and for a number the sum of the values in each bin."""

    counts: tuple[int, ...]  # one per bin, the null bin last
    sums: tuple[float, ...] = ()  # numeric: per bin but the null bin

    @property
    def rows(self) -> int:
        """Rows counted, nulls included."""
        return sum(self.counts)


@dataclass(frozen=True)
class Distribution:
    """Binned counts of one column, and how to bin a new value the same way."""

    name: str
    kind: Kind
    counts: tuple[int, ...]  # one per bin (``labels``), the null bin last
    sums: tuple[float, ...] = ()  # numeric: the sum of the values in each bin but the null bin
    cuts: tuple[float, ...] = ()  # numeric: the cut points between bins
    levels: tuple[str, ...] = ()  # categorical: the levels (then "unseen", then null)
    mean: float | None = None  # numeric: of the non-null values
    sd: float | None = None
    min: float | None = None
    max: float | None = None
    between_sd: float | None = None  # numeric with a time column: weekly means' spread

    @property
    def rows(self) -> int:
        """Rows counted, nulls included."""
        return sum(self.counts)

    @property
    def nulls(self) -> int:
        """Rows with no value."""
        return self.counts[-1]

    @property
    def binned(self) -> Binned:
        """The reference's counts (and sums)."""
        return Binned(self.counts, self.sums)

    def tally(self, column: pd.Series) -> Binned:
        """How many values of ``column`` fall in each bin (and, for a number, their sum).
        A value not of the column's type counts as null in a numeric column (text in a
        number field) and as unseen in a categorical one (a number in a category
        field); booleans are the numbers 1 and 0, as SQLite reads JSON (upstream.py
        names such type changes)."""
        size = len(self.counts)
        if self.kind == "categorical":
            codes = level_codes(column, self.levels)
            return Binned(tuple(int(c) for c in np.bincount(codes, minlength=size)))
        values = numbers(column)
        null = np.isnan(values)
        bins = np.searchsorted(np.asarray(self.cuts, dtype=float), values, side="right")
        bins[null] = size - 1
        sums = np.bincount(bins, weights=np.where(null, 0.0, values), minlength=size)
        counts = np.bincount(bins, minlength=size)
        return Binned(tuple(int(c) for c in counts), tuple(float(x) for x in sums[:-1]))

    @property
    def labels(self) -> list[str]:
        """A readable name per bin: ``< 3``, ``[3, 7.5)``, ``>= 9``, a level, unseen, null."""
        if self.kind == "categorical":
            return [*self.levels, UNSEEN, NULL]
        cuts = [f"{c:.4g}" for c in self.cuts]
        if not cuts:
            return ["all", NULL]
        inner = [f"[{lo}, {hi})" for lo, hi in pairwise(cuts)]
        return [f"< {cuts[0]}", *inner, f">= {cuts[-1]}", NULL]


@dataclass(frozen=True)
class Decisions:
    """The holdout's decision rates at the version's thresholds (partial automation)."""

    review_threshold: float
    decline_threshold: float
    rates: dict[str, float]  # approve, review, decline
    rows: int


@dataclass(frozen=True)
class Profile:
    """The reference of one model version: its features, scores and decisions."""

    features: dict[str, Distribution]
    score: Distribution
    decisions: Decisions
    bins: int  # quantile bins asked for per numeric column
    train_rows: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        """Read what ``to_dict`` wrote."""

        def distribution(d: dict[str, Any]) -> Distribution:
            lists = {k: tuple(d[k]) for k in ("counts", "sums", "cuts", "levels")}
            return Distribution(**{**d, **lists})

        return cls(
            features={name: distribution(d) for name, d in data["features"].items()},
            score=distribution(data["score"]),
            decisions=Decisions(**data["decisions"]),
            bins=data["bins"],
            train_rows=data["train_rows"],
        )

    def save(self, path: Path | str) -> Path:
        """Write as JSON, atomically."""
        return write_json(self.to_dict(), path)

    @classmethod
    def load(cls, path: Path | str) -> Profile:
        """Read a saved profile."""
        return cls.from_dict(read_json(path))


def quantile_cuts(values: np.ndarray, bins: int) -> tuple[float, ...]:
    """Distinct cut points at the inner quantiles ``1/bins .. (bins-1)/bins`` of
    ``values`` (fewer for a column with few distinct values)."""
    if values.size == 0:
        return ()
    # the quantile j/bins is the ceil(n j / bins)-th smallest value (inverted CDF, in exact
    # integer arithmetic): partial sorts suffice
    ranks = np.maximum(-(-values.size * np.arange(1, bins) // bins) - 1, 0)
    return tuple(float(c) for c in np.unique(np.partition(values, ranks)[ranks]))


def _is_number(value: object) -> bool:
    """An int, float or bool (JSON booleans read as 1 and 0, as SQLite reads them)."""
    return isinstance(value, int | float | np.number | np.bool_)


def numbers(column: pd.Series) -> np.ndarray:
    """A column's numbers as floats, NaN for nulls and for values that are no numbers."""
    if not (is_numeric_dtype(column.dtype) or is_bool_dtype(column.dtype)):
        if infer_dtype(column, skipna=True) not in ("integer", "floating", "mixed-integer-float"):
            column = column.where(column.map(_is_number))  # others: NaN
        column = pd.to_numeric(column)
    return column.to_numpy(dtype=float, na_value=np.nan)


def level_codes(column: pd.Series, levels: tuple[str, ...]) -> np.ndarray:
    """Each value's level index, ``len(levels)`` (unseen) for any other value, and
    ``len(levels) + 1`` for null. A bool column's levels are false and true, which the
    numbers 0 and 1 mean too (as in JSON read by SQLite); a category's are texts.
    Hashes each value once (``pd.factorize``) and looks up only the distinct values."""
    unseen = len(levels)
    if levels == BOOL_LEVELS and is_bool_dtype(column.dtype) and not column.hasnans:
        return column.to_numpy(dtype=np.int64)
    index = {level: i for i, level in enumerate(levels)}

    def code(value: object) -> int:
        if levels == BOOL_LEVELS:
            return int(value) if _is_number(value) and value in (0, 1) else unseen
        return index.get(value, unseen) if isinstance(value, str) else unseen

    codes, distinct = pd.factorize(column, use_na_sentinel=True)  # null: -1
    lookup = np.array([*(code(v) for v in distinct), unseen + 1], dtype=np.int64)
    return lookup[codes]


def between_weeks_sd(values: np.ndarray, times: pd.Series | None) -> float | None:
    """The SD of the weekly means beyond what sampling explains: sqrt(max(0, variance of
    the weekly means - mean of each week's variance / rows)); None without a time column
    or with fewer than 3 weeks of at least 30 values."""
    if times is None:
        return None
    frame = pd.DataFrame({"value": values, "week": pd.to_datetime(times).dt.to_period("W")})
    weeks = frame.dropna().groupby("week")["value"].agg(["mean", "var", "count"])
    weeks = weeks[weeks["count"] >= 30]
    if len(weeks) < 3:
        return None
    noise = float((weeks["var"] / weeks["count"]).mean())
    return float(np.sqrt(max(0.0, float(weeks["mean"].var(ddof=1)) - noise)))


def numeric_distribution(
    name: str, column: pd.Series, bins: int, times: pd.Series | None = None
) -> Distribution:
    """The binned reference of a numeric column (non-numbers count as null); ``times``:
    each row's time, for the spread of the weekly means."""
    values = numbers(column)
    present = values[~np.isnan(values)]
    cuts = quantile_cuts(present, bins)
    shape = Distribution(name, "numeric", counts=(0,) * (len(cuts) + 2), cuts=cuts)
    if present.size:
        shape = replace(
            shape,
            mean=float(present.mean()),
            sd=float(present.std(ddof=1)) if present.size > 1 else 0.0,
            min=float(present.min()),
            max=float(present.max()),
            between_sd=between_weeks_sd(values, times),
        )
    binned = shape.tally(column)
    return replace(shape, counts=binned.counts, sums=binned.sums)


def category_levels(schema: Schema, name: str) -> tuple[str, ...]:
    """A categorical feature's levels: the schema's categories, or false/true."""
    spec = schema.columns[name]
    return BOOL_LEVELS if spec.type == ColumnType.BOOL else tuple(spec.categories or ())


def categorical_distribution(name: str, column: pd.Series, levels: tuple[str, ...]) -> Distribution:
    """The counts of each level of a column, then unseen values, then nulls."""
    shape = Distribution(name, "categorical", counts=(0,) * (len(levels) + 2), levels=levels)
    return replace(shape, counts=shape.tally(column).counts)


def feature_kind(schema: Schema, name: str) -> Kind:
    """numeric for int and float features, categorical for category and bool."""
    return "numeric" if schema.columns[name].type in NUMBERS else "categorical"


def decision_rates(scores: np.ndarray, review: float, decline: float) -> dict[str, float]:
    """Shares of ``scores`` approved, reviewed and declined at the thresholds."""
    n = max(len(scores), 1)
    declined = int((scores >= decline).sum())
    reviewed = int((scores >= review).sum()) - declined
    return {
        "approve": (len(scores) - declined - reviewed) / n,
        "review": reviewed / n,
        "decline": declined / n,
    }


def build_profile(
    train: pd.DataFrame,
    holdout_scores: pd.Series,
    schema: Schema,
    bins: int,
    thresholds: tuple[float, float],
) -> Profile:
    """The reference profile of the features in ``train`` and of the holdout's scores
    at the ``(review, decline)`` thresholds; ``train``'s time column, when the schema has
    one, gives the weekly means' spread."""
    times = train.get(schema.time_column) if schema.time_column else None
    features = {}
    for name in schema.features:
        if feature_kind(schema, name) == "numeric":
            features[name] = numeric_distribution(name, train[name], bins, times)
        else:
            levels = category_levels(schema, name)
            features[name] = categorical_distribution(name, train[name], levels)
    scores = holdout_scores.to_numpy(dtype=float)
    review, decline = thresholds
    return Profile(
        features=features,
        score=numeric_distribution(SCORE, holdout_scores, bins),
        decisions=Decisions(review, decline, decision_rates(scores, review, decline), len(scores)),
        bins=bins,
        train_rows=len(train),
    )
