import yaml

from modelops.io import dump_model, write_parquet
from modelops.training.evaluate import evaluate
from modelops.training.lineage import (
    build_record,
    describe_part,
    file_md5,
    model_card,
    raw_data_hash,
)


def test_record_and_card(tmp_path, fitted, fitted_baselines, train_holdout, settings, monkeypatch):
    monkeypatch.chdir(tmp_path)
    schema = settings.data_schema
    train, holdout = train_holdout
    dump_model(fitted, tmp_path / "model.joblib")
    write_parquet(train, tmp_path / "train.parquet")
    write_parquet(holdout, tmp_path / "holdout.parquet")
    result = evaluate(fitted, fitted_baselines, holdout, schema, settings.evaluation)
    parts = {
        "train": describe_part(train, tmp_path / "train.parquet", schema),
        "holdout": describe_part(holdout, tmp_path / "holdout.parquet", schema),
    }
    record = build_record(
        settings=settings,
        model_path=tmp_path / "model.joblib",
        parts=parts,
        metrics=result.metrics,
        baselines=result.baselines,
        raw_hash="abc.dir",
    )
    assert record["model_id"] == f"{settings.model.name}-{file_md5(tmp_path / 'model.joblib')[:12]}"
    assert record["data"]["train"]["rows"] == len(train)
    if schema.time_column:
        assert record["data"]["holdout"]["time_min"] > record["data"]["train"]["time_max"]
    assert record["data"]["raw"]["md5"] == "abc.dir"
    assert record["decision"]["threshold"] == result.metrics["holdout"]["threshold"]
    assert {"scikit-learn", "pandas", "python"} <= set(record["libraries"])
    assert record["params"]["model"]["estimator"] == settings.model.estimator
    assert record["git"]["commit"] is None  # tmp_path is not a git repository

    card = model_card(record, result.slices, 0.95)
    assert record["model_id"] in card
    assert f"{result.metrics['roc_auc']['value']:.4f}" in card
    assert "## Limits" in card
    for name, values in result.slices.items():
        assert f"| {name} | {next(iter(values))} |" in card
    assert "no git commit" in card


def test_raw_hash_comes_from_dvc_lock(tmp_path):
    lock = tmp_path / "dvc.lock"
    lock.write_text(
        yaml.safe_dump({"stages": {"validate": {"deps": [{"path": "data/raw", "md5": "f00.dir"}]}}})
    )
    assert raw_data_hash(lock, "data/raw") == "f00.dir"
    assert raw_data_hash(lock, "data/other") is None
    assert raw_data_hash(tmp_path / "absent.lock", "data/raw") is None
