import json

import pytest
import yaml

from modelops.config import ModelCardSettings, WordSettings
from modelops.errors import InputError
from modelops.io import dump_model, write_parquet
from modelops.training.evaluate import evaluate
from modelops.training.lineage import (
    STAGES,
    build_record,
    code_hashes,
    describe_part,
    file_md5,
    model_card,
    raw_data_hash,
    stage_inputs,
)
from tests.conftest import REPO

PIPELINE = REPO / "dvc.yaml"


@pytest.fixture(scope="module")
def lineage(tmp_path_factory, fitted, fitted_baselines, train_holdout, settings):
    """A record, its evaluation, and the folder holding its files."""
    folder = tmp_path_factory.mktemp("lineage")
    schema = settings.data_schema
    train, holdout = train_holdout
    dump_model(fitted, folder / "model.joblib")
    write_parquet(train, folder / "train.parquet")
    write_parquet(holdout, folder / "holdout.parquet")
    result = evaluate(fitted, fitted_baselines, holdout, schema, settings.evaluation)
    parts = {
        "train": describe_part(train, folder / "train.parquet", schema),
        "holdout": describe_part(holdout, folder / "holdout.parquet", schema),
    }

    def record():
        return build_record(
            settings=settings,
            model_path=folder / "model.joblib",
            parts=parts,
            metrics=result.metrics,
            baselines=result.baselines,
            raw_hash="abc.dir",
            pipeline=PIPELINE,
        )

    return record, result, folder


def test_record_and_card(lineage, train_holdout, settings):
    make, result, folder = lineage
    record = make()
    train = train_holdout[0]
    assert record["model_id"] == f"{settings.model.name}-{file_md5(folder / 'model.joblib')[:12]}"
    assert record["data"]["train"]["rows"] == len(train)
    if settings.data_schema.time_column:
        assert record["data"]["holdout"]["time_min"] > record["data"]["train"]["time_max"]
    assert record["data"]["raw"]["md5"] == "abc.dir"
    assert record["decision"]["threshold"] == result.metrics["holdout"]["threshold"]
    assert {"scikit-learn", "pandas", "python"} <= set(record["libraries"])
    assert record["params"]["model"]["estimator"] == settings.model.estimator

    card = model_card(record, result.slices, 0.95, settings.model_card, settings.words)
    assert record["model_id"] in card
    assert f"{result.metrics['roc_auc']['value']:.4f}" in card
    assert "## Limits" in card
    for group, values in list(result.slices.items())[:1]:  # adopted data may have none
        assert f"| {group} | {next(iter(values))} |" in card
    assert record["code"]["md5"] in card


def test_record_is_the_same_on_every_run(lineage):
    """No time, no commit: the same inputs give the same bytes (a clean `git status`)."""
    make, _, _ = lineage
    first, second = make(), make()
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert not {"created_at", "git"} & set(first)


def test_record_names_the_code_and_only_the_params_the_stages_declare(lineage):
    record = lineage[0]()
    declared = stage_inputs(PIPELINE)
    assert set(record["params"]) == set(declared.params)
    assert not {"serving", "gates", "simulator", "behaviour"} & set(record["params"])
    files = record["code"]["files"]
    assert set(files) == set(declared.code)
    assert {"pipelines/train.py", "src/modelops/training/train.py"} <= set(files)
    assert files["pipelines/evaluate.py"] == file_md5(REPO / "pipelines/evaluate.py")


def test_evaluate_declares_the_code_of_every_recorded_stage():
    """So DVC rewrites lineage.json whenever a code file it records changes."""
    evaluate_only = stage_inputs(PIPELINE, ["evaluate"])
    assert set(stage_inputs(PIPELINE, STAGES).code) == set(evaluate_only.code)
    assert set(stage_inputs(PIPELINE, STAGES).params) == set(evaluate_only.params)


def test_stage_inputs_and_code_hashes(tmp_path):
    (tmp_path / "a.py").write_text("a = 1\n")
    (tmp_path / "b.py").write_text("b = 2\n")
    pipeline = tmp_path / "dvc.yaml"
    pipeline.write_text(yaml.safe_dump({"stages": {
        "train": {"deps": ["data/x.parquet", "a.py"], "params": ["model", "schema"]},
        "evaluate": {"deps": ["b.py", {"a.py": None}],
                     "params": ["evaluation.costs", {"other.yaml": ["words.record"]}]},
        "baselines": {"deps": []},
    }}))  # fmt: skip
    got = stage_inputs(pipeline)
    assert got.code == ("a.py", "b.py")
    assert got.params == ("evaluation", "model", "schema", "words")
    hashes = code_hashes(got.code, tmp_path)
    assert hashes["files"] == {name: file_md5(tmp_path / name) for name in ("a.py", "b.py")}
    (tmp_path / "b.py").write_text("b = 3\n")
    assert code_hashes(got.code, tmp_path)["md5"] != hashes["md5"]
    with pytest.raises(InputError, match=r"c\.py"):
        code_hashes(["c.py"], tmp_path)
    with pytest.raises(InputError, match="cannot read the stages"):
        stage_inputs(pipeline, ["validate"])


def test_card_prose_and_words_come_from_the_settings(lineage, settings, tmp_path):
    make, result, _ = lineage
    record = make()
    prose = ModelCardSettings(intended_use="Ranks claims.", data="Claims of 2024.", limits="- none")
    words = WordSettings(record="claim", positive="denied", negative="paid")
    card = model_card(record, result.slices, 0.95, prose, words)
    assert "## Intended use\nRanks claims." in card
    assert "## Data\nClaims of 2024.\n\n| part | rows | denied |" in card
    assert "## Limits\n- none" in card
    assert "Claims scoring at or above" in card

    written = tmp_path / "card.md"
    written.write_text("## What it is for\nEverything.\n")
    from_file = model_card(record, result.slices, 0.95, ModelCardSettings(file=written), words)
    assert "## What it is for\nEverything." in from_file
    assert "## Intended use" not in from_file
    assert "## Limits" not in from_file
    assert "## Metrics on the holdout" in from_file
    with pytest.raises(InputError, match=r"model_card\.file"):
        model_card(record, result.slices, 0.95, ModelCardSettings(file=tmp_path / "no.md"))


def test_raw_hash_comes_from_dvc_lock(tmp_path):
    lock = tmp_path / "dvc.lock"
    lock.write_text(
        yaml.safe_dump({"stages": {"validate": {"deps": [{"path": "data/raw", "md5": "f00.dir"}]}}})
    )
    assert raw_data_hash(lock, "data/raw") == "f00.dir"
    assert raw_data_hash(lock, "data/other") is None
    assert raw_data_hash(tmp_path / "absent.lock", "data/raw") is None
