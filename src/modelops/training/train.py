"""Build and fit the model: one sklearn Pipeline of schema-driven preprocessing and an
estimator chosen in params.yaml by class path and keyword arguments; plus baselines.
The train rows they are fitted on are declared (``model.fit_rows``), and what reaches
the estimator's ``fit`` is counted, so the record says what the model was trained on."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from modelops.config import BaselineSettings, FitRowsSettings, ModelSettings
from modelops.errors import InputError
from modelops.schema import Schema
from modelops.training.features import build_preprocessor, categorical_mask


class ModelConfigError(InputError):
    """model.estimator or model.params in params.yaml cannot build an estimator."""


class FitRowsError(InputError):
    """model.fit_rows in params.yaml cannot select the rows to fit on."""


def load_estimator_class(path: str) -> type[Any]:
    """Import ``package.module.ClassName``."""
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelConfigError(f"model.estimator '{path}': cannot import ({exc})") from exc
    if not (inspect.isclass(cls) and hasattr(cls, "predict_proba")):
        raise ModelConfigError(f"model.estimator '{path}' is not a classifier with predict_proba")
    return cls


def build_model(schema: Schema, settings: ModelSettings) -> Pipeline:
    """An unfitted Pipeline(preprocess, estimator)."""
    cls = load_estimator_class(settings.estimator)
    kwargs = dict(settings.params)
    accepted = inspect.signature(cls).parameters
    takes_any = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown and not takes_any:
        raise ModelConfigError(f"model.params: {cls.__name__} does not accept {unknown}")
    if settings.encoding == "ordinal" and "categorical_features" in accepted:
        kwargs.setdefault("categorical_features", categorical_mask(schema))
    return Pipeline(
        [
            ("preprocess", build_preprocessor(schema, settings.encoding)),
            ("estimator", cls(**kwargs)),
        ]
    )


def fit(model: Pipeline, train: pd.DataFrame, schema: Schema) -> Pipeline:
    """Fit on the schema's features and target, on one thread: the fitted file's bytes
    must not depend on the machine's core count (a gradient-boosting model stores its
    thread count; a logistic fit's last bits depend on how BLAS splits its products), so
    the same data and code give the same model id, and dvc.lock, everywhere."""
    with threadpool_limits(limits=1):
        model.fit(train[schema.features], train[schema.target].astype(int))
    return model


def build_baselines(schema: Schema, settings: BaselineSettings) -> dict[str, ClassifierMixin]:
    """A prior-only dummy and a logistic regression on the same schema-driven inputs."""
    logistic = Pipeline(
        [
            ("preprocess", build_preprocessor(schema, "onehot")),
            ("estimator", LogisticRegression(C=settings.logistic_c, max_iter=settings.max_iter)),
        ]
    )
    return {"dummy": DummyClassifier(strategy="prior"), "logistic": logistic}


def query_rows(frame: pd.DataFrame, query: str | None) -> pd.DataFrame:
    """The rows of ``frame`` for which ``query`` (``model.fit_rows.query``, a pandas
    ``DataFrame.query`` condition such as ``x > 0 and y.notna()``) is true, in their
    order; a missing result counts as false. No query: every row."""
    if query is None:
        return frame
    try:  # the python engine: the same result whether numexpr is installed or not
        kept = frame.eval(query, engine="python")
    except Exception as exc:  # pandas raises many types for a bad expression
        raise FitRowsError(
            f"model.fit_rows.query {query!r} cannot be applied to the train rows: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(kept, pd.Series) and pd.api.types.is_bool_dtype(kept.dtype)):
        raise FitRowsError(
            f"model.fit_rows.query {query!r} is not a condition (true or false per row)"
        )
    return frame[kept.fillna(False).to_numpy(dtype=bool)]


def sample_size(rows: int, share: float) -> int:
    """How many of ``rows`` a ``model.fit_rows.sample`` share keeps."""
    return rows if share >= 1 else round(rows * share)


def select_fit_rows(train: pd.DataFrame, rows: FitRowsSettings, target: str) -> pd.DataFrame:
    """The train rows to fit on, as ``model.fit_rows`` declares: those ``query`` keeps,
    then a share ``sample`` of them drawn with ``seed`` (in their order). Fails when
    nothing, or only one class of ``target``, is left."""
    chosen = query_rows(train, rows.query)
    if rows.sample < 1:
        size = sample_size(len(chosen), rows.sample)
        picked = np.random.default_rng(rows.seed).choice(len(chosen), size=size, replace=False)
        chosen = chosen.iloc[np.sort(picked)]
    described = f"model.fit_rows (query {rows.query!r}, sample {rows.sample})"
    if chosen.empty:
        raise FitRowsError(f"{described} keeps none of the {len(train):,} train rows")
    if chosen[target].nunique() < 2:
        raise FitRowsError(
            f"{described} keeps {len(chosen):,} train rows with only one class of '{target}'"
        )
    return chosen


@dataclass
class FitCount:
    """The rows and positives (target 1) that reached an estimator's ``fit``; None
    until it is called."""

    rows: int | None = None
    positives: int | None = None


def final_estimator(model: Any) -> Any:
    """The estimator a Pipeline ends in (the model itself when it is not a Pipeline)."""
    return model.steps[-1][1] if isinstance(model, Pipeline) else model


_ABSENT = object()


@contextmanager
def counting_fit(model: Any) -> Iterator[FitCount]:
    """Count what reaches the final estimator's ``fit`` inside the block (its last call):
    whatever the code between the data and the estimator dropped or added is seen. The
    count wraps ``fit`` as an attribute of that estimator instance and removes it on exit,
    so the fitted model pickles to the same bytes as without counting."""
    estimator = final_estimator(model)
    count = FitCount()
    original = estimator.fit
    previous = vars(estimator).get("fit", _ABSENT)

    def counted(x: Any, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        count.rows = int(x.shape[0]) if hasattr(x, "shape") else len(x)
        count.positives = None if y is None else int(np.count_nonzero(np.asarray(y) == 1))
        return original(x, y, *args, **kwargs)

    setattr(estimator, "fit", counted)  # noqa: B010 (mypy refuses assigning to a method)
    try:
        yield count
    finally:
        if previous is _ABSENT:
            vars(estimator).pop("fit", None)
        else:
            setattr(estimator, "fit", previous)  # noqa: B010


def train_record(
    train: pd.DataFrame,
    selected: pd.DataFrame,
    fitted: FitCount,
    rows: FitRowsSettings,
    target: str,
) -> dict[str, Any]:
    """What the train stage fitted on (metrics/train.json): the rows of the train part,
    those ``model.fit_rows`` selected, and those that reached the estimator's ``fit``."""
    return {
        "train_rows": len(train),
        "train_positives": int(train[target].sum()),
        "selected_rows": len(selected),
        "fitted_rows": fitted.rows,
        "fitted_positives": fitted.positives,
        "fit_rows": rows.model_dump(mode="json"),
    }
