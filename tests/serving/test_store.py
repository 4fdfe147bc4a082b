"""Saving the pipeline's model in the BentoML store: tag = model version, lineage kept,
and the current model is always `latest` (what deploy/environments/local.yaml serves)."""

from __future__ import annotations

import json

import bentoml

from modelops import paths
from modelops.io import dump_model, write_parquet
from modelops.serving.store import resolve, save_current
from modelops.training.lineage import file_md5
from modelops.training.train import build_model, fit
from tests.conftest import with_updates


def project(root, settings, model, train):
    dump_model(model, root / paths.MODEL)
    write_parquet(train, root / paths.TRAIN)
    md5 = file_md5(root / paths.MODEL)
    lineage = {
        "model_id": f"{settings.model.name}-{md5[:12]}", "code": {"md5": "c"},
        "model": {"md5": md5},
        "data": {"raw": {"md5": "r"}, "train": {"md5": "t"}, "holdout": {"md5": "h"}},
        "metrics": {"roc_auc": {"value": 0.9}},
        "decision": {"threshold": 0.1, "decline_threshold": 0.9},
    }  # fmt: skip
    (root / paths.LINEAGE).write_text(json.dumps(lineage))
    return f"{settings.model.name}:{md5[:12]}"


def test_the_current_model_is_saved_with_its_lineage_and_becomes_latest(
    tmp_path, settings, fitted, train_holdout
):
    train = train_holdout[0]
    other = with_updates(settings, model={"params": {**settings.model.params, "max_iter": 5}})
    second = fit(build_model(other.data_schema, other.model), train, other.data_schema)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first_tag = project(tmp_path / "a", settings, fitted, train)
    second_tag = project(tmp_path / "b", settings, second, train)

    assert save_current(settings, tmp_path / "a") == first_tag
    meta = bentoml.models.get(first_tag).info.metadata
    assert (meta["code_md5"], meta["train_md5"], meta["decline_threshold"]) == ("c", "t", 0.9)
    assert meta["git_commit"] == "", "outside a git repository: no commit"
    assert save_current(settings, tmp_path / "b") == second_tag
    assert resolve(f"{settings.model.name}:latest") == second_tag
    assert save_current(settings, tmp_path / "a") == first_tag, "back to the first model"
    assert resolve(f"{settings.model.name}:latest") == first_tag
