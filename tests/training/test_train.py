import pytest
from threadpoolctl import threadpool_limits

from modelops.io import dump_model
from modelops.training.lineage import file_md5
from modelops.training.train import ModelConfigError, build_model, fit, load_estimator_class

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
