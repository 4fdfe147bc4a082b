import pytest
from threadpoolctl import threadpool_limits

from modelops import paths
from modelops.config import FitRowsSettings
from modelops.io import dump_model, load_model, read_json, write_parquet
from modelops.training.lineage import file_md5
from modelops.training.train import (
    FitRowsError,
    ModelConfigError,
    build_baselines,
    build_model,
    counting_fit,
    final_estimator,
    fit,
    load_estimator_class,
    select_fit_rows,
)
from tests.conftest import with_updates
from tests.stages import run_stage_script, stage_script

HGB = "sklearn.ensemble.HistGradientBoostingClassifier"


def test_gradient_boosting_gets_the_categorical_mask(settings):
    config = settings.model.model_copy(
        update={"estimator": HGB, "encoding": "ordinal", "params": {}}
    )
    estimator = build_model(settings.data_schema, config).named_steps["estimator"]
    assert sum(estimator.categorical_features) == len(settings.data_schema.categorical_features)


def test_estimator_by_class_path_with_kwargs(settings):
    config = settings.model.model_copy(
        update={
            "estimator": "sklearn.linear_model.LogisticRegression",
            "encoding": "onehot",
            "params": {"C": 0.5},
        }
    )
    assert build_model(settings.data_schema, config).named_steps["estimator"].C == 0.5


@pytest.mark.parametrize(
    ("estimator", "params", "message"),
    [
        ("sklearn.ensemble.NoSuchModel", {}, "cannot import"),
        ("nosuchpackage.Model", {}, "cannot import"),
        ("sklearn.linear_model.LinearRegression", {}, "not a classifier"),
        (
            HGB,
            {"max_iters": 5},
            r"does not accept \['max_iters'\]",
        ),
    ],
)
def test_bad_model_settings_are_named(settings, estimator, params, message):
    config = settings.model.model_copy(update={"estimator": estimator, "params": params})
    with pytest.raises(ModelConfigError, match=message):
        build_model(settings.data_schema, config)


class KwargsClassifier:
    """Stands in for estimators such as xgboost's that take **kwargs."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def predict_proba(self, x):
        raise NotImplementedError


def test_estimators_taking_kwargs_accept_any_param(settings):
    config = settings.model.model_copy(
        update={"estimator": f"{__name__}.KwargsClassifier", "params": {"anything": 3}}
    )
    estimator = build_model(settings.data_schema, config).named_steps["estimator"]
    assert estimator.kwargs == {"anything": 3}


def test_class_path_loader():
    assert load_estimator_class("sklearn.dummy.DummyClassifier").__name__ == "DummyClassifier"


def test_the_fitted_file_does_not_depend_on_the_thread_count(train_holdout, settings, tmp_path):
    """Same data and code, same bytes: fitting ignores how many threads the caller allows."""
    train = train_holdout[0].head(3000)
    schema = settings.data_schema
    digests = set()
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            model = fit(build_model(schema, settings.model), train, schema)
        digests.add(file_md5(dump_model(model, tmp_path / f"model-{threads}.joblib")))
    assert len(digests) == 1


# What the model was fitted on: model.fit_rows selects, the train stage counts what
# reached the estimator's fit and records it in metrics/train.json.

ROWS = 4000  # enough of the fixture's train rows for both classes, quick to fit


def a_condition(schema, frame):
    """A query over a numeric feature of the schema (above its median), and its mask."""
    numbers = [c for c in schema.numeric_features if frame[c].nunique() > 2]
    if not numbers:
        pytest.skip("the schema has no numeric feature with more than two values")
    column = max(numbers, key=lambda c: frame[c].nunique())
    median = float(frame[column].median())
    return f"`{column}` > {median!r}", frame[column] > median


def with_fit_rows(settings, **fit_rows):
    declared = settings.model.fit_rows.model_copy(update=fit_rows)
    return with_updates(settings, model={"fit_rows": declared})


@pytest.fixture
def stage_dir(tmp_path, monkeypatch, train_holdout):
    """A working directory holding data/train.parquet, as the split stage leaves it."""
    monkeypatch.chdir(tmp_path)
    train = train_holdout[0].head(ROWS)
    write_parquet(train, paths.TRAIN)
    return train


def test_the_train_stage_records_every_row_when_nothing_is_declared(stage_dir, settings):
    target = settings.data_schema.target
    run_stage_script("train", settings)
    record = read_json(paths.TRAIN_RECORD)
    assert record == {
        "train_rows": len(stage_dir),
        "train_positives": int(stage_dir[target].sum()),
        "selected_rows": len(stage_dir),
        "fitted_rows": len(stage_dir),
        "fitted_positives": int(stage_dir[target].sum()),
        "fit_rows": {"query": None, "sample": 1.0, "seed": 0},
    }


def test_the_record_counts_what_reached_fit_not_what_was_read(
    stage_dir, settings, monkeypatch, caplog
):
    """A "clean the data" change that drops rows on the way to the estimator is seen."""
    script = stage_script("train")
    real_fit = script.fit
    dropped = len(stage_dir) // 3

    def cleaning_fit(model, train, schema):
        return real_fit(model, train.iloc[dropped:], schema)

    monkeypatch.setattr(script, "fit", cleaning_fit)
    run_stage_script("train", settings, script)
    record = read_json(paths.TRAIN_RECORD)
    kept = stage_dir.iloc[dropped:]
    assert record["train_rows"] == len(stage_dir)
    assert record["selected_rows"] == len(stage_dir)
    assert record["fitted_rows"] == len(kept)
    assert record["fitted_positives"] == int(kept[settings.data_schema.target].sum())
    assert f"but {len(kept):,} reached the estimator" in caplog.text


def test_a_declared_query_and_sample_give_the_expected_counts(stage_dir, settings):
    query, mask = a_condition(settings.data_schema, stage_dir)
    declared = with_fit_rows(settings, query=query, sample=0.5, seed=3)
    run_stage_script("train", declared)
    record = read_json(paths.TRAIN_RECORD)
    assert record["train_rows"] == len(stage_dir)
    assert record["selected_rows"] == record["fitted_rows"] == round(0.5 * mask.sum())
    assert record["fit_rows"] == {"query": query, "sample": 0.5, "seed": 3}
    chosen = select_fit_rows(stage_dir, declared.model.fit_rows, settings.data_schema.target)
    assert mask[chosen.index].all()  # only rows the query keeps...
    positions = stage_dir.index.get_indexer(chosen.index)
    assert (positions[1:] > positions[:-1]).all()  # ...in their order
    assert record["fitted_positives"] == int(chosen[settings.data_schema.target].sum())


def test_the_baselines_fit_the_same_declared_rows(stage_dir, settings):
    target = settings.data_schema.target
    query, mask = a_condition(settings.data_schema, stage_dir)
    declared = with_fit_rows(settings, query=query)
    run_stage_script("baselines", declared)
    dummy = load_model(paths.BASELINES)["dummy"]
    assert dummy.class_prior_[1] == pytest.approx(stage_dir[mask][target].mean())
    assert dummy.class_prior_[1] != pytest.approx(stage_dir[target].mean())


def test_the_sample_is_seeded(train_holdout, settings):
    train, target = train_holdout[0].head(ROWS), settings.data_schema.target
    rows = settings.model.fit_rows.model_copy(update={"sample": 0.3, "seed": 1})
    first, again = select_fit_rows(train, rows, target), select_fit_rows(train, rows, target)
    other = select_fit_rows(train, rows.model_copy(update={"seed": 2}), target)
    assert len(first) == len(other) == round(0.3 * len(train))
    assert first.index.equals(again.index)
    assert not first.index.equals(other.index)


@pytest.mark.parametrize(
    ("query", "sample", "message"),
    [
        ("no_such_column > 1", 1.0, r"model\.fit_rows\.query 'no_such_column > 1' cannot be"),
        ("(((", 1.0, r"model\.fit_rows\.query '\(\(\(' cannot be applied"),
        ("1 + 1", 1.0, r"model\.fit_rows\.query '1 \+ 1' is not a condition"),
        (None, 1e-9, r"model\.fit_rows .* keeps none of the"),
    ],
)
def test_bad_fit_rows_are_named(train_holdout, settings, query, sample, message):
    rows = FitRowsSettings(query=query, sample=sample)
    with pytest.raises(FitRowsError, match=message):
        select_fit_rows(train_holdout[0].head(ROWS), rows, settings.data_schema.target)


def test_rows_of_one_class_are_refused(train_holdout, settings):
    target = settings.data_schema.target
    rows = FitRowsSettings(query=f"`{target}` == 1")
    with pytest.raises(FitRowsError, match="only one class"):
        select_fit_rows(train_holdout[0].head(ROWS), rows, target)


def test_a_blank_query_is_refused_in_params():
    with pytest.raises(ValueError, match="query is blank"):
        FitRowsSettings(query="  ")


def test_counting_leaves_the_model_file_unchanged(train_holdout, settings, tmp_path):
    """Same data and code, same bytes, with or without counting: the wrapper is gone."""
    train, schema = train_holdout[0].head(ROWS), settings.data_schema
    plain = fit(build_model(schema, settings.model), train, schema)
    counted = build_model(schema, settings.model)
    with counting_fit(counted) as count:
        fit(counted, train, schema)
    assert count.rows == len(train)
    assert "fit" not in vars(final_estimator(counted))
    assert file_md5(dump_model(plain, tmp_path / "plain.joblib")) == file_md5(
        dump_model(counted, tmp_path / "counted.joblib")
    )


def test_counting_a_model_that_is_not_a_pipeline(train_holdout, settings):
    train, schema = train_holdout[0].head(ROWS), settings.data_schema
    dummy = build_baselines(schema, settings.baselines)["dummy"]
    with counting_fit(dummy) as count:
        fit(dummy, train.iloc[:100], schema)
    assert count.rows == 100
    assert count.positives == int(train.iloc[:100][schema.target].sum())
    assert "fit" not in vars(dummy)
