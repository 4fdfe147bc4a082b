"""Obtaining the champion: base revisions, the model in dvc.lock, a base without a
model. Fetching from DVC and retraining run for real in tests/integration/test_pr_rehearsal.py."""

import os
import subprocess

import pytest
import yaml

from modelops.review import champion
from modelops.review.repro import parse, stage_errors

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip


@pytest.fixture
def git_repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = os.environ | GIT_ENV
    subprocess.run(["git", "init", "-q", "-b", "main"], check=True)
    (tmp_path / "params.yaml").write_text("model: {name: x}\n")
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(["git", "commit", "-qm", "first"], check=True, env=env)
    return tmp_path


def test_unknown_base_names_the_fix(git_repo):
    with pytest.raises(champion.ChampionError, match="fetch-depth: 0"):
        champion.resolve("no-such-branch")


def test_base_without_a_trained_model_has_no_champion(git_repo):
    source = champion.fetch("main", git_repo / "out")
    assert source["status"] == "none"
    assert "has no trained model" in source["reason"]
    assert source["files"] == ["params.yaml"]
    assert (git_repo / "out/base/params.yaml").read_text() == "model: {name: x}\n"
    assert (git_repo / "out/source.json").exists()


def test_locked_model_md5(tmp_path):
    lock = tmp_path / "dvc.lock"
    lock.write_text(yaml.safe_dump({"stages": {"train": {"outs": [
        {"path": "models/model.joblib", "md5": "abc", "size": 1}]}}}))  # fmt: skip
    assert champion.locked_model_md5(lock) == "abc"
    assert champion.locked_model_md5(tmp_path / "missing.lock") is None


def test_repro_record_names_the_failed_stage_and_its_messages():
    output = (
        "Running stage 'validate':\n"
        "> python pipelines/validate.py\n"
        "[validate] reading 10 files\n"
        "[validate] ERROR: data/raw: 2 problems\n"
        "  - price: 3 rows\n"
        "  - plan: unknown 'gold'\n"
        "[validate] ERROR: stage 'validate' failed; its previous outputs are unchanged\n"
        "ERROR: failed to reproduce 'validate': failed to run: python pipelines/validate.py\n"
    )
    got = parse(output, 1)
    assert got["status"] == "failed"
    assert got["failed_stage"] == "validate"
    assert got["errors"][0] == "data/raw: 2 problems\n  - price: 3 rows\n  - plan: unknown 'gold'"
    assert stage_errors(output, "train") == []
    passed = parse("Running stage 'train':\nRunning stage 'evaluate':\n", 0)
    assert passed["stages_run"] == ["train", "evaluate"]
    assert passed["failed_stage"] is None
