"""The reference profile of a model version: what its inputs and scores looked like.

Monitoring compares live windows with it (drift.py, upstream.py) through binned counts
only, so the profile holds counts, never rows. Per feature of the schema:

- numeric (int, float): cut points at the training rows' quantiles (``drift.bins``), the
  count per bin plus a null bin, and the mean, SD, min and max. Bin ``i`` holds
  ``cuts[i-1] <= x < cuts[i]``; the outer bins are open, so any live value has a bin.
- categorical (category, bool): the count per level plus an "unseen" and a null bin.

Plus the holdout's score distribution (the same quantile binning) and its decision
rates at the version's thresholds (lineage.json), for prediction drift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelops.io import read_json, write_json
from modelops.schema import ColumnType, Schema

Kind = Literal["numeric", "categorical"]
NUMBERS = (ColumnType.INT, ColumnType.FLOAT)
BOOL_LEVELS = ("false", "true")  # a bool's levels, in the order of its codes
UNSEEN, NULL = "unseen", "null"
SCORE = "score"  # the name of the score's distribution in drift results


@dataclass(frozen=True)
class Distribution:
    """Binned counts of one column, and how to bin a new value the same way."""

    name: str
    kind: Kind
    counts: tuple[int, ...]  # one per bin (``labels``), the null bin last
    cuts: tuple[float, ...] = ()  # numeric: the cut points between bins
    levels: tuple[str, ...] = ()  # categorical: the levels (then "unseen", then null)
    mean: float | None = None  # numeric: of the non-null values
    sd: float | None = None
    min: float | None = None
    max: float | None = None

    @property
    def rows(self) -> int:
        """Rows counted, nulls included."""
        return sum(self.counts)

    @property
    def nulls(self) -> int:
        """Rows with no value."""
        return self.counts[-1]

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
            lists = {k: tuple(d[k]) for k in ("counts", "cuts", "levels")}
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
    inner = np.quantile(values, np.arange(1, bins) / bins, method="inverted_cdf")
    return tuple(float(c) for c in np.unique(inner))


def numeric_distribution(name: str, column: pd.Series, bins: int) -> Distribution:
    """The binned reference of a numeric column (non-numbers count as null)."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    present = values[~np.isnan(values)]
    cuts = quantile_cuts(present, bins)
    counts = np.bincount(np.searchsorted(cuts, present, side="right"), minlength=len(cuts) + 1)
    stats: dict[str, float | None] = dict.fromkeys(("mean", "sd", "min", "max"))
    if present.size:
        stats = {
            "mean": float(present.mean()),
            "sd": float(present.std(ddof=1)) if present.size > 1 else 0.0,
            "min": float(present.min()),
            "max": float(present.max()),
        }
    return Distribution(
        name,
        "numeric",
        counts=(*(int(c) for c in counts), int(values.size - present.size)),
        cuts=cuts,
        **stats,
    )


def category_levels(schema: Schema, name: str) -> tuple[str, ...]:
    """A categorical feature's levels: the schema's categories, or false/true."""
    spec = schema.columns[name]
    return BOOL_LEVELS if spec.type == ColumnType.BOOL else tuple(spec.categories or ())


def categorical_distribution(name: str, column: pd.Series, levels: tuple[str, ...]) -> Distribution:
    """The counts of each level of a column, then unseen values, then nulls."""
    if levels == BOOL_LEVELS:
        column = column.map({False: "false", True: "true"}, na_action="ignore")
    codes = pd.Categorical(column, categories=list(levels)).codes
    null = column.isna().to_numpy()
    counts = np.bincount(codes[~null] % (len(levels) + 1), minlength=len(levels) + 1)
    return Distribution(
        name, "categorical", counts=(*(int(c) for c in counts), int(null.sum())), levels=levels
    )


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
    at the ``(review, decline)`` thresholds."""
    features = {}
    for name in schema.features:
        if feature_kind(schema, name) == "numeric":
            features[name] = numeric_distribution(name, train[name], bins)
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
