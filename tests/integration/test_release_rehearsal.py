"""A rehearsal of releasing on one machine, in a temporary git repository: register a
version and take it through staging to production; register a second, see production
refuse it before staging, take it through staging in shadow, as a canary and in full,
then to production; roll production back in one command; a broken canary that
`make deploy` rolls back by itself; and what each version's image carries. After each
step: the desired-state files, the registry's tags, and what the environment's local
service really serves.

The models are fitted by the test session and committed as the pipeline would write
them; the gates' verdict of each is written by the test (the gates are rehearsed in
test_pr_rehearsal.py), since registering needs a passing verdict.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bentoml
import httpx
import pandas as pd
import pytest
import yaml

from modelops import paths
from modelops.config import Settings, load_settings
from modelops.io import dump_model
from modelops.release import deploy, image, promote, registry
from modelops.release.show import versions_table
from modelops.serving import store
from modelops.serving.bento import free_port
from modelops.serving.contract import ApiNames
from modelops.serving.state import DesiredStateError
from modelops.training.scoring import score
from modelops.training.train import build_model, fit
from tests.conftest import PARAMS, REPO, quicker, with_updates
from tests.integration.test_pr_rehearsal import sh
from tests.serving.support import FailsAbove, minimal_lineage, poison_values, sample_requests

pytestmark = [pytest.mark.integration, pytest.mark.heavy]
CANARY = {"bake_s": 4, "interval_s": 0.5, "min_requests": 10, "max_error_rate": 0.05}


@dataclass
class Rehearsal:
    """The repository, its settings, test traffic, and the versions registered so far."""

    root: Path
    settings: Settings
    holdout: pd.DataFrame
    records: list[dict[str, Any]]
    names: ApiNames
    released: dict[str, registry.Version] = field(default_factory=dict)

    def release(self, model: Any, scored_by: Any = None) -> registry.Version:
        """Commit ``model`` as the pipeline's output, write its passing verdict, register
        it (`make release`) and put it in the BentoML store. Its thresholds come from
        the holdout scores of ``scored_by`` (default: the model itself)."""
        path = dump_model(model, self.root / paths.MODEL)
        scores = score(scored_by or model, self.holdout, self.settings.data_schema)
        lineage = minimal_lineage(self.settings, path, scores)
        (self.root / paths.LINEAGE).write_text(json.dumps(lineage))
        sh(self.root, "git", "add", "-A")
        sh(self.root, "git", "commit", "-qm", f"model {lineage['model_id']}")
        verdict = {"verdict": "PASS", "failed": [], "model_id": lineage["model_id"]}
        (self.root / paths.VERDICT).parent.mkdir(parents=True, exist_ok=True)
        (self.root / paths.VERDICT).write_text(json.dumps(verdict))
        version = registry.register(self.root, self.settings.model.name)
        store.save_current(self.settings, self.root, version=version.version)
        self.released[version.version] = version
        return version

    def promote(self, env: str, version: str, strategy: str) -> deploy.Outcome:
        """`make promote`, the pull request merged, then `make deploy`."""
        change = promote.promote(self.root, self.settings, env, version, strategy)
        sh(self.root, "git", "merge", "-q", "--ff-only", change.branch)
        return deploy.deploy(self.root, self.settings, env, free_port())

    def state(self, env: str) -> dict:
        return yaml.safe_load((self.root / f"deploy/environments/{env}.yaml").read_text())

    def answered(self, outcome: deploy.Outcome, n: int = 40) -> Counter:
        """(route, version) of the answers to ``n`` requests; all must be 200."""
        with httpx.Client(base_url=outcome.url, timeout=30) as client:
            answers = [
                client.post("/predict", json={self.names.record: r}) for r in self.records[:n]
            ]
        assert [a.status_code for a in answers] == [200] * n, answers[-1].text
        return Counter((a.json()["route"], a.json()["model_version"]) for a in answers)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, settings, train_holdout):
    root = tmp_path_factory.mktemp("release") / "repo"
    (root / "deploy/environments").mkdir(parents=True)
    params = yaml.safe_load(PARAMS.read_text())
    params["release"] = {"stages": ["staging", "production"], "canary": CANARY}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for env in ("local", "staging", "production"):
        (root / f"deploy/environments/{env}.yaml").write_text(
            f"champion: {settings.model.name}:latest\n"
        )
    (root / ".gitignore").write_text("reports/\n")
    train, holdout = train_holdout
    (root / paths.TRAIN).parent.mkdir(parents=True, exist_ok=True)
    train.to_parquet(root / paths.TRAIN)
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "template")
    # the test session's model settings (quicker), the project's release settings
    named = with_updates(load_settings(root / "params.yaml"), model=settings.model.model_dump())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(REPO))  # the servers unpickle the test's broken model
        yield Rehearsal(
            root,
            named,
            holdout,
            sample_requests(settings, holdout, 60),
            ApiNames.from_words(settings.words),
        )
        for env in ("staging", "production"):
            deploy.stop(root, env)


@pytest.fixture(scope="module")
def second_model(settings, train_holdout):
    small = with_updates(settings, model={"params": quicker(settings, max_iter=20)})
    return fit(build_model(small.data_schema, small.model), train_holdout[0], small.data_schema)


def test_a_first_version_goes_through_staging_to_production(rehearsal, fitted):
    v1 = rehearsal.release(fitted)
    assert v1.version == "v0.1.0"
    for env in ("staging", "production"):
        outcome = rehearsal.promote(env, "v0.1.0", "full")
        assert rehearsal.state(env)["champion"] == v1.model_tag
        assert outcome.serving == [v1.model_tag]
        assert outcome.stages_recorded == (f"{v1.tag} -> {env}",)
        assert rehearsal.answered(outcome) == {("champion", v1.model_tag): 40}
    [registered] = registry.versions(rehearsal.root, rehearsal.settings.model.name)
    assert registered.stages == ("production", "staging")


def test_b_production_refuses_a_version_before_it_served_in_staging(rehearsal, second_model):
    v2 = rehearsal.release(second_model)
    assert v2.version == "v0.2.0"
    with pytest.raises(DesiredStateError, match="has not served in staging yet"):
        promote.promote(rehearsal.root, rehearsal.settings, "production", "v0.2.0", "canary:10")


def test_c_staging_shadow_then_canary_then_full(rehearsal):
    v1, v2 = rehearsal.released["v0.1.0"], rehearsal.released["v0.2.0"]
    shadow = rehearsal.promote("staging", "v0.2.0", "shadow")
    assert shadow.serving == [v1.model_tag, v2.model_tag]
    assert rehearsal.answered(shadow) == {("champion", v1.model_tag): 40}
    with traffic(rehearsal, shadow.url):  # the bake needs challenger requests to judge
        canary = rehearsal.promote("staging", "v0.2.0", "canary:50")
    assert canary.rolled_back is None
    routes = rehearsal.answered(canary)
    assert routes[("challenger", v2.model_tag)] > 0
    assert routes[("champion", v1.model_tag)] > 0
    full = rehearsal.promote("staging", "v0.2.0", "full")
    assert rehearsal.answered(full) == {("champion", v2.model_tag): 40}
    # its first healthy deployment there (in shadow) recorded the stage, once
    assert shadow.stages_recorded == (f"{v2.tag} -> staging",)
    assert canary.stages_recorded == full.stages_recorded == ()


def test_d_production_then_a_one_command_rollback(rehearsal):
    v1, v2 = rehearsal.released["v0.1.0"], rehearsal.released["v0.2.0"]
    production = rehearsal.promote("production", "v0.2.0", "full")
    assert rehearsal.answered(production) == {("champion", v2.model_tag): 40}
    name = rehearsal.settings.model.name
    table = versions_table(registry.versions(rehearsal.root, name), rehearsal.root)
    assert "production champion (single)" in table.splitlines()[1]
    promote.rollback(rehearsal.root, rehearsal.settings, "production")  # `make rollback`
    assert rehearsal.state("production")["champion"] == v1.model_tag
    back = deploy.deploy(rehearsal.root, rehearsal.settings, "production")
    assert back.serving == [v1.model_tag]
    assert rehearsal.answered(back) == {("champion", v1.model_tag): 40}
    subject = sh(rehearsal.root, "git", "log", "-1", "--format=%s").stdout
    assert subject.startswith("Roll back production: revert")


def test_e_a_broken_canary_is_rolled_back_by_the_deploy_itself(rehearsal, fitted, settings):
    column, _, _ = poison_values(settings, rehearsal.holdout)
    # a quarter of the traffic fails; the typical record (the train median) still scores
    limit = float(rehearsal.holdout[column].quantile(0.75))
    v3 = rehearsal.release(FailsAbove(fitted, column, limit), scored_by=fitted)
    before = rehearsal.state("staging")
    with traffic(rehearsal, deploy.find_running(rehearsal.root, "staging").url):
        outcome = rehearsal.promote("staging", v3.version, "canary:50")
    assert outcome.rolled_back is not None
    assert f"{v3.model_tag} failed" in outcome.rolled_back
    assert rehearsal.state("staging") == before
    assert outcome.serving == [rehearsal.released["v0.2.0"].model_tag]
    name = rehearsal.settings.model.name
    assert "staging" not in registry.find(rehearsal.root, name, v3.version).stages


def test_g_an_image_carries_the_versions_beside_it_each_rebuilt_from_its_commit(rehearsal):
    v1, v2, v3 = (rehearsal.released[v] for v in ("v0.1.0", "v0.2.0", "v0.3.0"))
    assert v1.record["image_carries"] == ["v0.1.0"]
    assert v2.record["image_carries"] == ["v0.1.0", "v0.2.0"]  # staging and production: v1
    assert v3.record["image_carries"] == ["v0.1.0", "v0.2.0", "v0.3.0"]
    # a fresh CI runner's store lacks the older versions: `make image` saves each from
    # the model, lineage and training rows at its commit
    bentoml.models.delete(v1.model_tag)
    assert image.stored(rehearsal.root, rehearsal.settings, v1) == v1.model_tag
    saved = bentoml.models.get(v1.model_tag).info.metadata
    assert (saved["model_id"], saved["git_commit"]) == (v1.record["model_id"], v1.commit)


class traffic:  # noqa: N801  # used as `with traffic(...)`
    """Background /predict requests to ``url`` (127.0.0.1) until the block ends."""

    def __init__(self, rehearsal: Rehearsal, url: str) -> None:
        self.rehearsal, self.url = rehearsal, url
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        records, envelope = self.rehearsal.records, self.rehearsal.names.record
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for i in range(100_000):  # bounded; stopped long before
                if self.stop.is_set():
                    return
                client.post("/predict", json={envelope: records[i % len(records)]})

    def __enter__(self) -> traffic:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


@pytest.mark.example  # the example's pipeline outputs, as `make run` leaves them
def test_f_make_run_shows_the_loop_and_changes_nothing_here():
    """`modelops demo`'s last part, on this repository's pipeline outputs."""
    if not (REPO / paths.MODEL).exists():
        pytest.skip("no pipeline outputs here: `make run` first")
    store = REPO / ".bentoml/models"
    before_store = sorted(p.name for p in store.rglob("*")) if store.exists() else []
    before_git = sh(REPO, "git", "status", "--porcelain").stdout
    done = subprocess.run(
        [sys.executable, "-c", "from modelops.release.loop import run_in_subprocess as r; "
         "raise SystemExit(r())"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].strip() == "gates      PASS (make gates)"
    assert lines[2].strip().startswith("release")
    assert "@v0.1.0 on" in lines[2]
    assert [line.split()[0] for line in lines[3:5]] == ["staging", "production"]
    assert "make rollback ENV=production" in lines[-1]
    assert sh(REPO, "git", "status", "--porcelain").stdout == before_git
    after_store = sorted(p.name for p in store.rglob("*")) if store.exists() else []
    assert after_store == before_store, "the project's model store is untouched"
