"""Build and fit the model: one sklearn Pipeline of schema-driven preprocessing and an
estimator chosen in params.yaml by class path and keyword arguments; plus baselines."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from modelops.config import BaselineSettings, ModelSettings
from modelops.errors import InputError
from modelops.schema import Schema
from modelops.training.features import build_preprocessor, categorical_mask


class ModelConfigError(InputError):
    """model.estimator or model.params in params.yaml cannot build an estimator."""


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
