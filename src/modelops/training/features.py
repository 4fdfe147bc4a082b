"""Preprocessing built from the schema; it is the first step of the fitted model, so
evaluation and serving transform inputs identically."""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from modelops.schema import Schema

Encoding = Literal["ordinal", "onehot"]


def build_preprocessor(schema: Schema, encoding: Encoding) -> ColumnTransformer:
    """Categoricals first (categories fixed by the schema, unknown ones become missing),
    then numeric features. ``ordinal`` suits tree models; ``onehot`` also imputes and
    scales numbers for linear models."""
    categorical = schema.categorical_features
    categories = [list(schema.columns[c].categories or ()) for c in categorical]
    numeric = schema.numeric_features
    if encoding == "ordinal":
        cat_step: OrdinalEncoder | OneHotEncoder = OrdinalEncoder(
            categories=categories,
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
        )
        num_step: Pipeline | str = "passthrough"
    else:
        cat_step = OneHotEncoder(categories=categories, handle_unknown="ignore")
        num_step = make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
        )
    return ColumnTransformer(
        [("categorical", cat_step, categorical), ("numeric", num_step, numeric)],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def categorical_mask(schema: Schema) -> list[bool]:
    """Which preprocessed columns are categorical (for ``ordinal`` encoding)."""
    return [True] * len(schema.categorical_features) + [False] * len(schema.numeric_features)
