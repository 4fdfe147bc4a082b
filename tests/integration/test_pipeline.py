"""The real `dvc repro` in a temporary copy of the repository, on its configured data.

Checks the outputs, the no-op rerun, that a params change reruns only the stages it
should, that a bad batch stops at validate without touching earlier outputs, how raw
data is restored on a fresh clone, and `dvc exp run`; with the example's simulator
(small), also regenerating data and appending a week. With a files source (an adopted
template) the copy gets the repository's data, so run `make data` first. The tests
share one copy and run in order.
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

from modelops.config import load_settings
from modelops.data import synthetic
from modelops.data.sources import read_raw
from modelops.serving.contract import ApiNames
from modelops.training.lineage import file_md5
from tests.conftest import REPO

pytestmark = pytest.mark.integration

SETTINGS = load_settings(REPO / "params.yaml")
SIMULATED = SETTINGS.data.source == "simulator"
DATA = SETTINGS.data.path
SMALL = {"evaluation": {"bootstrap": {"n_resamples": 100}}} | (
    {
        "simulator": {"weeks": 5, "transactions_per_week": 5000},
        "split": {"holdout_weeks": 2},
        "model": {"params": {"max_iter": 60}},
    }
    if SIMULATED
    else {}
)
OUTPUTS_OF_REPO = ("data/raw.dvc", "dvc.lock")


def copy_template(root: Path) -> Path:
    """The files git tracks here (and new ones it does not ignore), without this clone's
    data hash and pipeline state."""
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
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
    if not SIMULATED and not (REPO / DATA).exists():
        pytest.skip(f"{DATA} is not here: run `make data` first")
    root = copy_template(tmp_path_factory.mktemp("project"))
    edit_params(root, SMALL)
    run(root, "git", "init", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "template")
    if not SIMULATED:
        copy = shutil.copytree if (REPO / DATA).is_dir() else shutil.copy2
        copy(REPO / DATA, root / DATA)
    got = run(root, "modelops", "data", "get")
    assert ("generated 5 weeks" if SIMULATED else f"matches {DATA}.dvc") in got.stderr
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "data", "--allow-empty")  # a files source: unchanged
    return root


def a_hyperparameter(project: Path) -> tuple[str, int | float]:
    """A model hyperparameter of the copy's params.yaml and a new value for it."""
    params = yaml.safe_load((project / "params.yaml").read_text())["model"]["params"]
    numbers = {k: v for k, v in params.items() if type(v) in (int, float) and k != "random_state"}
    if not numbers:
        pytest.skip("model.params has no numeric hyperparameter to change")
    key, value = next(iter(numbers.items()))
    return key, (value + 1 if isinstance(value, int) else round(value * 0.9, 6))


def forget_data(project: Path, *, remote: bool = False) -> None:
    """As on a fresh clone: no raw data, no DVC cache (and, with ``remote``, no remote)."""
    data = project / DATA
    shutil.rmtree(data) if data.is_dir() else data.unlink()
    shutil.rmtree(project / ".dvc/cache")
    if remote:
        shutil.rmtree(project / ".dvc-remote")


class TestPipeline:
    def test_repro_runs_every_stage_and_writes_outputs(self, project):
        done = run(project, "dvc", "repro")
        assert stages_run(done) == [
            "validate", "split", "train", "baselines", "evaluate", "profile"
        ]  # fmt: skip
        metrics = json.loads((project / "metrics/metrics.json").read_text())
        auc = metrics["roc_auc"]
        assert auc["ci_low"] < auc["value"] < auc["ci_high"]
        lineage = json.loads((project / "models/lineage.json").read_text())
        raw = yaml.safe_load((project / f"{DATA}.dvc").read_text())["outs"][0]["md5"]
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
        name = SETTINGS.model.name
        version = lineage["model_id"].removeprefix(f"{name}-")
        assert f"bento {name}-service:{version}" in done.stdout
        model = bentoml.models.get(f"{name}:{version}")
        assert model.info.metadata["train_md5"] == lineage["data"]["train"]["md5"]
        assert model.info.metadata["decline_threshold"] == lineage["decision"]["decline_threshold"]
        assert model.info.metadata["code_md5"] == lineage["code"]["md5"]
        bento = bentoml.get(f"{name}-service:{version}")
        assert [str(m.tag) for m in bento.info.all_models] == [f"{name}:{version}"]
        holdout = pd.read_parquet(project / "data/holdout.parquet")
        state = {"champion": f"{name}:{version}"}
        envelope = ApiNames.from_words(SETTINGS.words).record
        with running_server(project / "reports", state, target=str(bento.tag)) as server:
            answer = httpx.post(
                f"{server.url}/predict",
                json={envelope: sample_requests(settings, holdout, 1)[0]},
            )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == f"{name}:{version}"

    def test_hyperparameter_change_reruns_only_train_and_evaluate(self, project):
        """And the reference profile, whose decision rates follow the new thresholds."""
        key, value = a_hyperparameter(project)
        edit_params(project, {"model": {"params": {key: value}}})
        assert stages_run(run(project, "dvc", "repro")) == ["train", "evaluate", "profile"]
        rate = yaml.safe_load((project / "params.yaml").read_text())["evaluation"]["review_rate"]
        edit_params(project, {"evaluation": {"review_rate": round(rate + 0.01, 4)}})
        assert stages_run(run(project, "dvc", "repro")) == ["evaluate", "profile"]
        run(project, "git", "add", "-A")
        run(project, "git", "commit", "-qm", "tuned")

    def test_bad_batch_fails_validate_and_keeps_earlier_outputs(self, project):
        before = {
            p: file_md5(project / p)
            for p in ("data/validated.parquet", "metrics/data.json", "metrics/metrics.json")
        }
        schema = SETTINGS.data_schema
        raw = read_raw(SETTINGS.data.source, project / DATA).head(50)
        broken = synthetic.invalid(raw, schema, "out_of_range") or synthetic.invalid(
            raw, schema, "unknown_category"
        )
        assert broken is not None, "the schema has neither a bounded number nor a category"
        if schema.id_column:  # new ids, so only the broken value breaks a rule
            broken.frame[schema.id_column] = "X" + broken.frame[schema.id_column].astype(str)
        if (project / DATA).is_dir():
            bad_file = project / DATA / "zzzz-bad.parquet"
            broken.frame.to_parquet(bad_file, index=False)
            where = f"{DATA}/zzzz-bad.parquet row 2"
        else:
            bad_file = project / DATA
            original = pd.read_csv(bad_file, dtype=str, keep_default_na=False)
            pd.concat([original, broken.frame.astype(str)]).to_csv(bad_file, index=False)
            where = f"{DATA} line {len(original) + 3}"
        done = run(project, "dvc", "repro", check=False)
        assert done.returncode != 0
        assert stages_run(done) == ["validate"]
        assert f"column '{broken.column}': " in done.stderr
        assert f"1 row, e.g. {where}" in done.stderr
        assert "previous outputs are unchanged" in done.stderr
        assert {p: file_md5(project / p) for p in before} == before
        # `dvc repro` records new raw data in the .dvc file (DVC does so for data sources);
        # dropping the bad batch means restoring the committed .dvc file and its data.
        if bad_file.name == "zzzz-bad.parquet":
            bad_file.unlink()
        run(project, "git", "checkout", f"{DATA}.dvc")
        run(project, "dvc", "checkout", "--force", f"{DATA}.dvc")
        assert "up to date" in run(project, "dvc", "status").stdout

    def test_experiments_with_set_param(self, project):
        key, value = a_hyperparameter(project)
        done = run(project, "dvc", "exp", "run", "-S", f"model.params.{key}={value}")
        assert stages_run(done) == ["train", "evaluate", "profile"]
        shown = run(project, "dvc", "exp", "show", "--json").stdout
        assert f'"{key}": {value}' in shown

    def test_fresh_clone_restores_the_committed_data(self, project):
        forget_data(project)
        assert "restored" in run(project, "modelops", "data", "get").stderr

    @pytest.mark.example
    def test_fresh_clone_regenerates_the_example_data(self, project):
        forget_data(project, remote=True)
        got = run(project, "modelops", "data", "get")
        assert "regenerated data/raw (5 weeks)" in got.stderr
        assert "up to date" in run(project, "dvc", "status", "data/raw.dvc").stdout

    @pytest.mark.example
    def test_regenerated_data_with_other_settings_is_refused(self, project):
        forget_data(project, remote=True)
        edit_params(project, {"simulator": {"seed": 7}})
        got = run(project, "modelops", "data", "get", check=False)
        assert got.returncode == 1
        assert "does not match the committed hash" in got.stderr
        assert (project / "data/raw.regenerated").is_dir()
        assert not (project / "data/raw").exists()
        shutil.rmtree(project / "data/raw.regenerated")
        run(project, "git", "checkout", "params.yaml")
        assert "regenerated" in run(project, "modelops", "data", "get").stderr

    @pytest.mark.example
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

    @pytest.mark.example
    def test_a_new_batch_that_breaks_the_schema_is_refused_and_nothing_is_tracked(self, project):
        """Retraining's `make new-data`: an upstream change (amounts far past the schema's
        max) fails validation, naming the column; the batch is removed, DVC unchanged."""
        before = (project / "data/raw.dvc").read_text()
        cents = {"upstream_change": {"week": 5, "scale": {"amount": 1e6}}}
        edit_params(project, {"simulator": cents})
        got = run(project, "modelops", "data", "refresh", check=False)
        run(project, "git", "checkout", "params.yaml")
        assert got.returncode == 1
        assert "amount" in got.stderr
        assert not (project / "data/raw/week-0005.parquet").exists()
        assert (project / "data/raw.dvc").read_text() == before
        assert "week-0005.parquet" in run(project, "modelops", "data", "refresh").stderr
        run(project, "git", "checkout", "data/raw.dvc")
        run(project, "dvc", "checkout", "data/raw.dvc")
        assert "up to date" in run(project, "dvc", "status", "data/raw.dvc").stdout
