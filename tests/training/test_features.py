import numpy as np
import pytest

from modelops.training.features import build_preprocessor, categorical_mask


def test_ordinal_encoding_uses_schema_categories_and_maps_unknown_to_missing(dataset, settings):
    schema = settings.data_schema
    if not schema.categorical_features:
        pytest.skip("the schema has no category feature")
    pre = build_preprocessor(schema, "ordinal").fit(dataset.head(1000))
    column = schema.categorical_features[0]
    rows = dataset.head(3).copy()
    rows.loc[rows.index[1], column] = schema.columns[column].categories[-1]
    rows.loc[rows.index[0], column] = "not-a-declared-category"
    out = pre.transform(rows)
    assert out.shape == (3, len(schema.features))
    assert np.isnan(out[0, 0])
    assert out[1, 0] == len(schema.columns[column].categories) - 1
    n = len(schema.categorical_features)
    assert categorical_mask(schema) == [True] * n + [False] * (len(schema.features) - n)


def test_onehot_encoding_imputes_missing_numbers(dataset, settings):
    schema = settings.data_schema
    fit_rows = dataset.head(1000)
    pre = build_preprocessor(schema, "onehot").fit(fit_rows)
    out = pre.transform(dataset.head(50))
    n_categories = sum(len(schema.columns[c].categories) for c in schema.categorical_features)
    # one missing-indicator column per numeric feature with gaps in the fitted rows
    gaps = int(fit_rows[schema.numeric_features].isna().any().sum())
    assert out.shape[1] == n_categories + len(schema.numeric_features) + gaps
    assert not np.isnan(np.asarray(out.todense() if hasattr(out, "todense") else out)).any()
