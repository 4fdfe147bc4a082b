"""The real `dvc repro` in a temporary copy of the repository, on small data.

Checks the outputs, the no-op rerun, that a params change reruns only the stages it
should, that a bad batch stops at validate without touching earlier outputs, how raw
data is restored or regenerated on a fresh clone, appending a week, and `dvc exp run`.
The tests share one copy and run in order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from modelops.training.lineage import file_md5
from tests.conftest import REPO

pytestmark = pytest.mark.integration

SMALL = {
    "simulator": {"weeks": 5, "transactions_per_week": 5000},
    "split": {"holdout_weeks": 2},
    "model": {"params": {"max_iter": 60}},
    "evaluation": {"bootstrap": {"n_resamples": 100}},
}
OUTPUTS_OF_REPO = ("data/raw.dvc", "dvc.lock")


def copy_template(root: Path) -> Path:
    """The files git tracks here, without this clone's data hash and pipeline state."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in tracked:
        if name not in OUTPUTS_OF_REPO and (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    return root


def run(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
    }  # fmt: skip
    done = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def stages_run(done: subprocess.CompletedProcess[str]) -> list[str]:
    return re.findall(r"Running stage '([a-z_]+)'", done.stdout + done.stderr)


def merge(base: dict, update: dict) -> dict:
    for key, value in update.items():
        base[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


def edit_params(root: Path, update: dict) -> None:
    path = root / "params.yaml"
    path.write_text(
        yaml.safe_dump(merge(yaml.safe_load(path.read_text()), update), sort_keys=False)
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = copy_template(tmp_path_factory.mktemp("project"))
    edit_params(root, SMALL)
    run(root, "git", "init", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "template")
    got = run(root, "modelops", "data", "get")
    assert "generated 5 weeks" in got.stderr
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "data")
    return root


class TestPipeline:
    def test_repro_runs_every_stage_and_writes_outputs(self, project):
        done = run(project, "dvc", "repro")
        assert stages_run(done) == ["validate", "split", "train", "baselines", "evaluate"]
        metrics = json.loads((project / "metrics/metrics.json").read_text())
        auc = metrics["roc_auc"]
        assert auc["ci_low"] < auc["value"] < auc["ci_high"]
        lineage = json.loads((project / "models/lineage.json").read_text())
        raw = yaml.safe_load((project / "data/raw.dvc").read_text())["outs"][0]["md5"]
        assert lineage["data"]["raw"]["md5"] == raw
        assert lineage["model"]["md5"] == file_md5(project / "models/model.joblib")
        assert (project / "models/model_card.md").read_text().startswith("# Model card")
        assert "roc_auc.ci_low" in run(project, "dvc", "metrics", "show").stdout
        dag = run(project, "dvc", "dag").stdout
        assert all(
            stage in dag for stage in ("validate", "split", "train", "baselines", "evaluate")
        )
        run(project, "git", "add", "-A")
        run(project, "git", "commit", "-qm", "trained")

    def test_noop_rerun_runs_nothing(self, project):
        assert stages_run(run(project, "dvc", "repro")) == []
        assert "up to date" in run(project, "dvc", "status").stdout

    def test_bento_packages_the_model_with_its_lineage_and_serves(self, project, settings):
        import bentoml

        from tests.serving.support import running_server, sample_requests

        shutil.copytree(REPO / "build", project / "build", dirs_exist_ok=True)
        done = run(project, "modelops", "bento")
        lineage = json.loads((project / "models/lineage.json").read_text())
        version = lineage["model_id"].removeprefix("card-fraud-")
        assert f"bento card-fraud-service:{version}" in done.stdout
        model = bentoml.models.get(f"card-fraud:{version}")
        assert model.info.metadata["train_md5"] == lineage["data"]["train"]["md5"]
        assert model.info.metadata["decline_threshold"] == lineage["decision"]["decline_threshold"]
        bento = bentoml.get(f"card-fraud-service:{version}")
        assert [str(m.tag) for m in bento.info.all_models] == [f"card-fraud:{version}"]
        holdout = pd.read_parquet(project / "data/holdout.parquet")
        state = {"champion": f"card-fraud:{version}"}
        with running_server(project / "reports", state, target=str(bento.tag)) as server:
            answer = httpx.post(
                f"{server.url}/predict",
                json={"transaction": sample_requests(settings, holdout, 1)[0]},
            )
        assert answer.status_code == 200
        assert answer.json()["model_version"] == f"card-fraud:{version}"

    def test_hyperparameter_change_reruns_only_train_and_evaluate(self, project):
        edit_params(project, {"model": {"params": {"max_iter": 50}}})
        assert stages_run(run(project, "dvc", "repro")) == ["train", "evaluate"]
        edit_params(project, {"evaluation": {"review_rate": 0.03}})
        assert stages_run(run(project, "dvc", "repro")) == ["evaluate"]
        run(project, "git", "add", "-A")
        run(project, "git", "commit", "-qm", "tuned")

    def test_bad_batch_fails_validate_and_keeps_earlier_outputs(self, project):
        before = {
            p: file_md5(project / p)
            for p in ("data/validated.parquet", "metrics/data.json", "metrics/metrics.json")
        }
        last = sorted((project / "data/raw").glob("*.parquet"))[-1]
        bad = pd.read_parquet(last).head(50)
        bad["transaction_id"] = "X" + bad["transaction_id"]
        bad.loc[bad.index[3], "amount"] = -20.0
        bad.loc[bad.index[4], "channel"] = "telepathy"
        bad_file = project / "data/raw/week-0099.parquet"
        bad.to_parquet(bad_file, index=False)
        done = run(project, "dvc", "repro", check=False)
        assert done.returncode != 0
        assert stages_run(done) == ["validate"]
        assert (
            "column 'amount': below the minimum 0.01 (pandera: greater_than_or_equal_to(0.01)): "
            "1 row, e.g. data/raw/week-0099.parquet row 4 (transaction_id=X"
        ) in done.stderr
        assert "column 'channel': not one of the categories ['pos'" in done.stderr
        assert "previous outputs are unchanged" in done.stderr
        assert {p: file_md5(project / p) for p in before} == before
        # `dvc repro` records new raw data in data/raw.dvc (DVC does so for data sources);
        # dropping the bad batch means deleting it and restoring the committed .dvc file.
        bad_file.unlink()
        run(project, "git", "checkout", "data/raw.dvc")
        assert "up to date" in run(project, "dvc", "status").stdout

    def test_experiments_with_set_param(self, project):
        done = run(project, "dvc", "exp", "run", "-S", "model.params.max_iter=40")
        assert stages_run(done) == ["train", "evaluate"]
        shown = run(project, "dvc", "exp", "show", "--json").stdout
        assert '"max_iter": 40' in shown

    def test_fresh_clone_restores_or_regenerates_the_committed_data(self, project):
        shutil.rmtree(project / "data/raw")
        shutil.rmtree(project / ".dvc/cache")
        assert "restored" in run(project, "modelops", "data", "get").stderr
        shutil.rmtree(project / "data/raw")
        shutil.rmtree(project / ".dvc/cache")
        shutil.rmtree(project / ".dvc-remote")
        got = run(project, "modelops", "data", "get")
        assert "regenerated data/raw (5 weeks)" in got.stderr
        assert "up to date" in run(project, "dvc", "status", "data/raw.dvc").stdout

    def test_regenerated_data_with_other_settings_is_refused(self, project):
        shutil.rmtree(project / "data/raw")
        shutil.rmtree(project / ".dvc/cache")
        shutil.rmtree(project / ".dvc-remote")
        edit_params(project, {"simulator": {"seed": 7}})
        got = run(project, "modelops", "data", "get", check=False)
        assert got.returncode == 1
        assert "does not match the committed hash" in got.stderr
        assert (project / "data/raw.regenerated").is_dir()
        assert not (project / "data/raw").exists()
        shutil.rmtree(project / "data/raw.regenerated")
        run(project, "git", "checkout", "params.yaml")
        assert "regenerated" in run(project, "modelops", "data", "get").stderr

    def test_append_adds_a_week_and_invalidates_the_pipeline(self, project):
        got = run(project, "modelops", "data", "append", "--weeks", "1")
        assert "week-0005.parquet" in got.stderr
        out = yaml.safe_load((project / "data/raw.dvc").read_text())["outs"][0]
        assert out["nfiles"] == 6
        status = json.loads(run(project, "dvc", "status", "--json").stdout)
        assert "validate" in status
        run(project, "git", "checkout", "data/raw.dvc")
        run(project, "dvc", "checkout", "data/raw.dvc")
        assert "up to date" in run(project, "dvc", "status", "data/raw.dvc").stdout
