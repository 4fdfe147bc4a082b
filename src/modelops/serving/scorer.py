"""Scoring records (one dict per row) with the fitted Pipeline, plus reason codes.

The generic path builds a DataFrame and calls the Pipeline, exactly as evaluation does.
For the default model (ordinal-encoded HistGradientBoosting) a fast path encodes the
records straight into the array the trees read, skipping the two ColumnTransformers
(the Pipeline's and the estimator's own) that cost most of a one-row predict. The fast
path is used only after it reproduced the generic path's scores exactly on probe rows;
tests/serving/test_scorer.py checks the same on the holdout.

Reason codes: for each feature, the score drop when that feature alone is set to its
typical training value (median, or most frequent category). All rows of a batch and
all their replacements go through the model in one call, whose cost is dominated by the
number of trees rather than the number of rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from modelops.schema import PANDAS_DTYPES, ColumnType, Schema

log = logging.getLogger(__name__)

Record = Mapping[str, Any]


@dataclass(frozen=True)
class Reason:
    """One feature that pushed a score up: its value and how much it added."""

    feature: str
    value: Any
    contribution: float


def reference_values(train: pd.DataFrame, schema: Schema, columns: Sequence[str]) -> dict:
    """Typical value of each model input: median of numbers, most frequent otherwise."""
    reference: dict[str, Any] = {}
    for name in columns:
        values = train[name].dropna()
        kind = schema.columns[name].type
        if kind in (ColumnType.INT, ColumnType.FLOAT):
            median = float(values.median())
            reference[name] = round(median) if kind == ColumnType.INT else median
        else:
            reference[name] = (
                values.mode().iloc[0].item()
                if kind == ColumnType.BOOL
                else str(values.mode().iloc[0])
            )
    return reference


def _is_identity(transformer: Any) -> bool:
    """A fitted 'passthrough' step (sklearn stores it as an identity FunctionTransformer)."""
    if isinstance(transformer, str):
        return transformer == "passthrough"
    return isinstance(transformer, FunctionTransformer) and transformer.func is None


class _FastEncoder:
    """Records -> the float array HistGradientBoosting's trees read (ordinal encoding)."""

    def __init__(self, model: Any) -> None:
        outer = model.named_steps["preprocess"]
        self.estimator: HistGradientBoostingClassifier = model.named_steps["estimator"]
        if not isinstance(self.estimator, HistGradientBoostingClassifier):
            raise TypeError("the fast path needs HistGradientBoostingClassifier")
        names = list(outer.get_feature_names_out())
        # each outer column: the feature name and, for categoricals, value -> outer code
        maps: list[dict[Any, float] | None] = [None] * len(names)
        for step, transformer, columns in outer.transformers_:
            if step == "remainder" or len(columns) == 0:  # nothing selected: nothing fitted
                continue
            if isinstance(transformer, OrdinalEncoder):
                for column, categories in zip(columns, transformer.categories_, strict=True):
                    maps[names.index(column)] = {c: float(i) for i, c in enumerate(categories)}
            elif not _is_identity(transformer):
                raise TypeError(f"the fast path cannot reproduce step '{step}'")
        order = list(range(len(names)))
        inner = self.estimator._preprocessor
        if inner is not None:  # the estimator re-encodes categoricals: compose the two maps
            order = []
            for step, transformer, mask in inner.transformers_:
                selected = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else mask
                if step == "encoder":
                    for position, categories in zip(selected, transformer.categories_, strict=True):
                        codes = {float(c): float(i) for i, c in enumerate(categories)}
                        outer_map = maps[position] or {}
                        maps[position] = {v: codes.get(c, np.nan) for v, c in outer_map.items()}
                order.extend(int(i) for i in selected)
        self.features = [names[i] for i in order]
        self.maps = [maps[i] for i in order]

    def encode(self, records: Sequence[Record]) -> np.ndarray:
        """One float64 row per record; unknown categories and None become NaN."""
        array = np.empty((len(records), len(self.features)), dtype=np.float64)
        for j, (name, mapping) in enumerate(zip(self.features, self.maps, strict=True)):
            values = [record.get(name) for record in records]
            if mapping is None:
                array[:, j] = [np.nan if v is None else float(v) for v in values]
            else:
                array[:, j] = [mapping.get(v, np.nan) for v in values]
        return array

    def predict(self, array: np.ndarray) -> np.ndarray:
        """Positive-class probability per row, as HistGradientBoostingClassifier.predict_proba."""
        est = self.estimator
        raw = np.zeros((len(array), est.n_trees_per_iteration_), dtype=np.float64, order="F")
        raw += est._baseline_prediction
        est._predict_iterations(array, est._predictors, raw, False, 1)
        proba: np.ndarray = est._loss.predict_proba(raw)
        return proba[:, 1]


class Scorer:
    """Scores and explains records with one fitted model version."""

    def __init__(self, model: Any, schema: Schema, reference: Mapping[str, Any]) -> None:
        self.model = model
        self.schema = schema
        self.columns = list(getattr(model, "feature_names_in_", schema.features))
        self.reference = {c: reference[c] for c in self.columns}
        self.fast = self._verified_fast_path()

    def _verified_fast_path(self) -> _FastEncoder | None:
        try:
            fast = _FastEncoder(self.model)
        except (TypeError, KeyError, AttributeError, ValueError):
            return None
        probes = self._probe_records()
        try:
            same = np.array_equal(fast.predict(fast.encode(probes)), self._generic(probes))
        except Exception:  # any mismatch in private internals: use the generic path
            log.warning("fast scoring path failed its check; using the generic Pipeline")
            return None
        return fast if same else None

    def _probe_records(self) -> list[dict[str, Any]]:
        """The reference row, then each category (and a missing value) in turn."""
        rows = [dict(self.reference)]
        for name in self.columns:
            spec = self.schema.columns[name]
            for value in (*(spec.categories or ()), None, "not-a-category"):
                if spec.type == ColumnType.CATEGORY or value is None:
                    rows.append({**self.reference, name: value})
        return rows

    def _frame(self, records: Sequence[Record]) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(
            [{c: r.get(c) for c in self.columns} for r in records], columns=self.columns
        )
        for name in self.columns:
            spec = self.schema.columns[name]
            if spec.type in (ColumnType.INT, ColumnType.FLOAT) and frame[name].isna().any():
                frame[name] = frame[name].astype("float64")
            elif spec.type != ColumnType.CATEGORY:
                frame[name] = frame[name].astype(PANDAS_DTYPES[spec.type])
        return frame

    def _generic(self, records: Sequence[Record]) -> np.ndarray:
        proba: np.ndarray = self.model.predict_proba(self._frame(records))
        return proba[:, 1]

    def score(self, records: Sequence[Record]) -> np.ndarray:
        """Positive-class probability per record."""
        if self.fast is None:
            return self._generic(records)
        return self.fast.predict(self.fast.encode(records))

    def score_and_explain(
        self, records: Sequence[Record], top: int
    ) -> tuple[np.ndarray, list[list[Reason]]]:
        """Scores plus, per record, up to ``top`` features that raised its score most."""
        if top == 0:
            return self.score(records), [[] for _ in records]
        n, k = len(records), len(self.columns)
        if self.fast is None:
            variants: list[Record] = list(records)
            for record in records:
                variants.extend({**record, c: self.reference[c]} for c in self.columns)
            scores = self._generic(variants)
        else:  # the same variants, built on the encoded array
            encoded = self.fast.encode([*records, self.reference])
            rows, typical = encoded[:n], encoded[n]
            where = [self.fast.features.index(c) for c in self.columns]
            replaced = np.repeat(rows[:, None, :], k, axis=1)
            replaced[:, np.arange(k), where] = typical[where]
            scores = self.fast.predict(np.vstack([rows, replaced.reshape(n * k, -1)]))
        base = scores[:n]
        drops = base[:, None] - scores[n:].reshape(n, k)
        reasons = []
        for i, record in enumerate(records):
            ranked = np.argsort(-drops[i], kind="stable")[:top]
            reasons.append(
                [
                    Reason(
                        self.columns[j], record.get(self.columns[j]), round(float(drops[i, j]), 6)
                    )
                    for j in ranked
                    if drops[i, j] > 0
                ]
            )
        return base, reasons
