import numpy as np

from modelops.training.features import build_preprocessor, categorical_mask


def test_ordinal_encoding_uses_schema_categories_and_maps_unknown_to_missing(
    transactions, settings
):
    schema = settings.data_schema
    pre = build_preprocessor(schema, "ordinal").fit(transactions.head(1000))
    rows = transactions.head(3).copy()
    rows.loc[rows.index[0], "channel"] = "telepathy"
    out = pre.transform(rows)
    assert out.shape == (3, len(schema.features))
    channel = schema.categorical_features.index("channel")
    assert np.isnan(out[0, channel])
    expected = schema.columns["channel"].categories.index(rows["channel"].iloc[1])
    assert out[1, channel] == expected
    assert categorical_mask(schema) == [True] * 3 + [False] * (len(schema.features) - 3)


def test_onehot_encoding_imputes_missing_numbers(transactions, settings):
    schema = settings.data_schema
    pre = build_preprocessor(schema, "onehot").fit(transactions.head(1000))
    out = pre.transform(transactions.head(50))
    n_categories = sum(len(schema.columns[c].categories) for c in schema.categorical_features)
    # one missing-indicator column: distance_from_home_km is the only nullable feature
    assert out.shape[1] == n_categories + len(schema.numeric_features) + 1
    assert not np.isnan(np.asarray(out.todense() if hasattr(out, "todense") else out)).any()
