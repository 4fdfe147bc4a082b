"""A local rehearsal of the pull-request loop, with the make targets the workflow runs.

A temporary git repository is built from the template: `main` holds a trained base
model (on a smaller simulated data set, so the rehearsal takes minutes; its base
schema leaves ``txn_count_24h`` unused). Then one branch per case, each judged against
`main` by `make data champion pr-repro behaviour parity gates report`, as in
.github/workflows/pr-report.yml:

(a) a neutral hyperparameter change -> PASS;
(b) a preprocessing "refactor" that silently drops an informative feature -> FAIL
    naming the ROC-AUC regression;
(c) a bad data batch -> FAIL at validation, with the validation message;
(d) a real improvement (the unused feature is added) -> PASS showing the gain and its
    interval.

Case (a) also exercises the fallback: the base model is removed from the DVC cache
first, so `make champion` retrains the base commit (and gets identical bytes).

Each case runs in its own copy of the repository, two at a time (the machine's cores);
the tests then check each case's outcome.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from modelops.io import load_model
from modelops.review.champion import locked_model_md5
from tests.conftest import REPO
from tests.integration.test_pipeline import copy_template, edit_params

pytestmark = [pytest.mark.integration, pytest.mark.example]

REHEARSAL = {
    "simulator": {"weeks": 10, "transactions_per_week": 10000},
    "split": {"holdout_weeks": 3},
    # quicker to train and to judge; still enough to tell a few ROC-AUC points apart
    "model": {"params": {"max_iter": 100, "learning_rate": 0.1}},
    "evaluation": {"bootstrap": {"n_resamples": 300}},
    "schema": {"columns": {"txn_count_24h": {"type": "int", "min": 0, "role": "ignore"}}},
}
# The workflow's steps; behaviour and parity run only when the pipeline succeeded.
STEPS = ("champion", "pr-repro", "behaviour", "parity", "gates", "report")


# The environment as collected, read once: the cases run in threads, and reading
# os.environ while pytest's main thread sets or clears PYTEST_CURRENT_TEST can fail.
COLLECTED_ENV = dict(os.environ)


def env(root: Path) -> dict[str, str]:
    """The project's interpreter and the rehearsal repository's own code."""
    return COLLECTED_ENV | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{COLLECTED_ENV['PATH']}",
        "PYTHONPATH": str(root / "src"),
        "BENTOML_HOME": str(root / ".bentoml"),  # cases run side by side: a store each
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
    }  # fmt: skip


def sh(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=root, env=env(root), capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def make(root: Path, target: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A make target in the rehearsal repository, using this test run's environment."""
    venv = Path(sys.executable).parents[1]
    # VENV: this environment; UV: never install or sync anything in the rehearsal copy
    fixed = (f"VENV={venv}", f"UV={shutil.which('true')}")
    return sh(root, "make", "--no-print-directory", target, *fixed, *args, check=False)


def pull_request(root: Path, branch: str, change) -> dict[str, subprocess.CompletedProcess[str]]:
    """Branch off main, apply ``change``, commit, and run the workflow's steps."""
    sh(root, "git", "checkout", "-q", "-f", "main")
    sh(root, "git", "clean", "-qfdx", "data/raw")
    assert make(root, "data").returncode == 0  # main's raw data, back from the DVC cache
    sh(root, "git", "checkout", "-q", "-b", branch)
    change(root)
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", branch)
    steps = {"data": make(root, "data")}
    assert steps["data"].returncode == 0, steps["data"].stderr
    for target in STEPS:
        started = time.perf_counter()
        if target in ("behaviour", "parity") and steps["pr-repro"].returncode != 0:
            continue
        steps[target] = make(root, target, "BASE=main")
        print(f"{branch}: make {target}: {time.perf_counter() - started:.1f} s")
    assert steps["report"].returncode == 0, steps["report"].stderr
    return steps


def patch(root: Path, path: str, old: str, new: str) -> None:
    """Replace code in the rehearsal repository's copy of ``path`` (it must be there)."""
    code = (root / path).read_text()
    assert old in code, f"{path} no longer holds the code this case changes"
    (root / path).write_text(code.replace(old, new))


def verdict(root: Path) -> dict:
    return json.loads((root / "reports/pr/verdict.json").read_text())


def report(root: Path) -> str:
    return (root / "reports/pr/report.md").read_text()


def gate(root: Path, name: str) -> dict:
    return next(g for g in verdict(root)["gates"] if g["name"] == name)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """The template with a trained base model committed on main."""
    root = copy_template(tmp_path_factory.mktemp("rehearsal"))
    shutil.copytree(REPO / "build", root / "build")  # make parity: UV is a no-op here
    edit_params(root, REHEARSAL)
    sh(root, "git", "init", "-q", "-b", "main")
    assert make(root, "repro").returncode == 0
    # an environment that fixes the thresholds of the base model
    decision = json.loads((root / "models/lineage.json").read_text())["decision"]
    review, decline = decision["threshold"], decision["decline_threshold"]
    (root / "deploy/environments/production.yaml").write_text(
        f"champion: card-fraud:latest\nthresholds: {{review: {review}, decline: {decline}}}\n"
    )
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "base model")
    return root


@dataclass(frozen=True)
class Run:
    """One case's pull request: its repository copy and the outcome of each step."""

    root: Path
    steps: dict[str, subprocess.CompletedProcess[str]]


def uncache_the_base_model(root: Path) -> None:
    """The base model is not in the DVC cache (and the rehearsal's remote is empty)."""
    md5 = locked_model_md5(root / "dvc.lock")
    assert md5 is not None
    (root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).unlink()


def neutral(root: Path) -> None:
    edit_params(root, {"model": {"params": {"l2_regularization": 0.5}}})


def refactor_numeric_features(root: Path) -> None:
    # "numbers are ints and floats": the refactor forgets bools, so new_device is gone
    patch(root, "src/modelops/schema.py", "self.columns[c].type != ColumnType.CATEGORY]",
          "self.columns[c].type in (ColumnType.INT, ColumnType.FLOAT)]")  # fmt: skip


def add_bad_batch(root: Path) -> None:
    last = sorted((root / "data/raw").glob("*.parquet"))[-1]
    bad = pd.read_parquet(last).head(200)
    bad["transaction_id"] = "X" + bad["transaction_id"]
    bad.loc[bad.index[:5], "amount"] = -20.0
    bad.to_parquet(root / "data/raw/week-0099.parquet", index=False)
    sh(root, "dvc", "add", "-q", "data/raw")


def use_txn_count_24h(root: Path) -> None:
    edit_params(root, {"schema": {"columns": {"txn_count_24h": {"role": "feature"}}}})


def fit_on_a_sample(root: Path) -> None:
    # "fit faster": a tenth of the train rows silently never reach the estimator
    fit = "    with threadpool_limits(limits=1):\n        model.fit("
    sample = "    train = train.sample(frac=0.9, random_state=0)\n"
    patch(root, "src/modelops/training/train.py", fit, sample + fit)


def off_by_one(root: Path) -> None:
    # the first holdout week also lands in training
    patch(root, "src/modelops/data/split.py", "frame[~is_holdout], frame[is_holdout]",
          "frame[week <= cutoff], frame[is_holdout]")  # fmt: skip


def up_weight(root: Path) -> None:
    # positives weighted 10:1: much the same ranking, scores far too high
    edit_params(root, {"model": {"params": {"class_weight": {0: 1, 1: 10}}}})


def rescale_in_the_service(root: Path) -> None:
    # the service, and only the service, divides the amount by 100 before scoring
    scorer = root / "src/modelops/serving/scorer.py"
    code = scorer.read_text()
    start = "        if top == 0:\n"  # the top of score_and_explain, what /predict* call
    buggy = code.replace(
        start,
        '        records = [{**r, "amount": r["amount"] / 100} for r in records]\n' + start,
    )
    assert buggy != code
    scorer.write_text(buggy)


# branch -> (what changes, what is done to main's copy first)
CASES: dict[str, tuple[Callable[[Path], None], Callable[[Path], None] | None]] = {
    "neutral": (neutral, uncache_the_base_model),
    "refactor": (refactor_numeric_features, None),
    "bad-batch": (add_bad_batch, None),
    "new-feature": (use_txn_count_24h, None),
    "row-filter": (fit_on_a_sample, None),
    "off-by-one": (off_by_one, None),
    "up-weighted": (up_weight, None),
    "serving-only": (rescale_in_the_service, None),
}


@pytest.fixture(scope="module")
def runs(repo, tmp_path_factory) -> dict[str, Run]:
    """Every case's pull request, each in its own copy of ``repo``, two at a time."""

    def rehearse(branch: str) -> Run:
        change, prepare = CASES[branch]
        root = tmp_path_factory.mktemp(branch) / "repo"
        shutil.copytree(repo, root, symlinks=True)
        if prepare:
            prepare(root)
        return Run(root, pull_request(root, branch, change))

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(CASES, pool.map(rehearse, CASES), strict=True))


def test_a_neutral_change_passes_even_when_the_champion_must_be_retrained(runs):
    repo, steps = runs["neutral"].root, runs["neutral"].steps
    source = json.loads((repo / "reports/pr/champion/source.json").read_text())
    assert source["status"] == "retrained"
    assert source["identical"] is True, "retraining the base commit reproduces its model"
    assert steps["gates"].returncode == 0, verdict(repo)["failed"]
    assert verdict(repo)["verdict"] == "PASS"
    parity = json.loads((repo / "reports/pr/parity.json").read_text())
    assert steps["parity"].returncode == 0, parity["error"]
    assert (parity["score_mismatches"], parity["decision_mismatches"]) == (0, 0), parity
    text = report(repo)
    assert text.startswith("## ✅ PASS")
    assert "retrained from `main`" in text
    assert "| `model.params.l2_regularization` | 1.0 | 0.5 |" in text


def test_b_a_silently_dropped_feature_fails_on_roc_auc(runs):
    repo, steps = runs["refactor"].root, runs["refactor"].steps
    assert steps["gates"].returncode != 0  # make exits 2 when the command exits 1
    assert "champion:roc_auc" in verdict(repo)["failed"]
    auc = gate(repo, "champion:roc_auc")
    assert auc["ci_high"] < -0.005
    assert auc["value"] < -0.01
    model = load_model(repo / "models/model.joblib")
    assert "new_device" not in model.named_steps["preprocess"].get_feature_names_out()
    text = report(repo)
    assert text.startswith("## ❌ FAIL")
    assert "`champion:roc_auc`" in text.splitlines()[0]
    assert "▼ worse" in text


def test_c_a_bad_data_batch_fails_at_validation(runs):
    repo, steps = runs["bad-batch"].root, runs["bad-batch"].steps
    assert steps["pr-repro"].returncode != 0
    assert "behaviour" not in steps
    assert "parity" not in steps
    assert steps["gates"].returncode != 0  # make exits 2 when the command exits 1
    assert verdict(repo)["failed"] == ["data_validation"]
    message = gate(repo, "data_validation")["reason"]
    assert "column 'amount'" in message
    assert "5 rows" in message
    text = report(repo)
    assert text.startswith("## ❌ FAIL")
    assert "`data_validation`" in text.splitlines()[0]
    assert "### Data validation failed" in text
    assert "column 'amount'" in text
    assert "| raw data files | 10 | 11 |" in text


def test_d_a_real_improvement_passes_and_shows_the_gain(runs):
    repo, steps = runs["new-feature"].root, runs["new-feature"].steps
    assert steps["gates"].returncode == 0, verdict(repo)["failed"]
    auc = gate(repo, "champion:roc_auc")
    assert auc["ci_low"] > 0, "the gain is credible: its whole interval is above zero"
    text = report(repo)
    assert text.startswith("## ✅ PASS")
    assert "▲ better" in text.split("### Gates")[0]
    assert "changed column `txn_count_24h`" in text


def failed_gates_are(root: Path, kind: str) -> list[str]:
    """The failing gates, after checking that every one is of ``kind``."""
    failed = [g for g in verdict(root)["gates"] if g["status"] == "fail"]
    assert failed, "the change must fail"
    assert {g["kind"] for g in failed} == {kind}, [(g["name"], g["reason"]) for g in failed]
    return [g["name"] for g in failed]


def test_e_a_silent_row_filter_fails_on_the_rows_that_reached_fit(runs):
    repo, steps = runs["row-filter"].root, runs["row-filter"].steps
    assert steps["gates"].returncode != 0
    assert failed_gates_are(repo, "integrity") == ["integrity:fitted_rows"]
    fitted = gate(repo, "integrity:fitted_rows")
    assert fitted["value"] == round(0.9 * fitted["threshold"])
    first = report(repo).split("### Metrics")[0]
    assert "`integrity:fitted_rows`: fitted on" in first


def test_f_an_off_by_one_split_fails_on_split_integrity(runs):
    repo, steps = runs["off-by-one"].root, runs["off-by-one"].steps
    assert steps["gates"].returncode != 0
    failed = failed_gates_are(repo, "integrity")
    assert {"integrity:no_shared_ids", "integrity:train_before_holdout"} <= set(failed)
    text = report(repo)
    assert "train rows are at or after the holdout's start" in text.split("### Metrics")[0]
    assert "the challenger was trained on them" in text  # left out of the comparison


def test_g_up_weighted_positives_fail_on_calibration(runs):
    repo, steps = runs["up-weighted"].root, runs["up-weighted"].steps
    assert steps["gates"].returncode != 0
    failed = failed_gates_are(repo, "calibration")
    fixed = "fixed_threshold:deploy/environments/production.yaml:review"
    assert {"calibration:log_loss", fixed} <= set(failed), verdict(repo)["gates"]
    first = report(repo).split("### Metrics")[0]
    assert "`calibration:log_loss`: log loss " in first
    assert f"`{fixed}`: deploy/environments/production.yaml fixes the review threshold" in first


def test_h_a_serving_only_change_fails_on_parity(runs):
    repo, steps = runs["serving-only"].root, runs["serving-only"].steps
    assert steps["pr-repro"].returncode == 0
    assert steps["gates"].returncode != 0
    assert "parity:scores" in failed_gates_are(repo, "parity")
    scores = gate(repo, "parity:scores")
    assert scores["value"] > 1e-3  # the largest served-offline difference
    assert "`parity:scores`:" in report(repo).split("### Metrics")[0]
