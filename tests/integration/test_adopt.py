"""Adopting the template for data it has never seen, as a new user would: `make adopt`
in a fresh clone, then `make run`, the template tests, a neutral pull request through
the gates, and a later template update merged without conflict.

Two data sets: scikit-learn's bundled breast-cancer data (a real one) and a generated
churn-like table built to be awkward (tests/integration/datasets.py).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO
from tests.integration.datasets import awkward, breast_cancer
from tests.integration.test_pr_rehearsal import env, make, sh

# `example`: adoption starts from the template as shipped (data.source: simulator); in an
# adopted clone these tests skip, since the template is adopted already.
pytestmark = [pytest.mark.integration, pytest.mark.example]

DATASETS: dict[str, tuple[Callable[[], pd.DataFrame], dict[str, str]]] = {
    "breast-cancer": (breast_cancer, {"TARGET": "diagnosis", "POSITIVE": "malignant"}),
    "awkward": (awkward, {"TARGET": "Churn", "RECORD": "customer", "NAME": "churn"}),
}
# The template tests run in the adopted clone: all of them (the real pipeline, bento and
# server tests too) for one data set; the quick ones for the other, to keep the suite short.
# The template's tests rerun in each adopted copy, but for the example's own and the heavy
# ones (load, manifests, the release rehearsal: they do not depend on the data set).
TEMPLATE_TESTS = {
    "breast-cancer": "not example and not heavy",
    "awkward": "not example and not integration and not heavy",
}
EXAMPLE_WORDS = re.compile(
    r"\b(fraud\w*|transactions?|(?<!model )cards?|card_\w+|is_fraud|legit\w*|merchants?)\b", re.I
)  # "model card" is the ML term, not the example's payment card
# What adoption may touch: params.yaml, the data's .dvc file (and DVC's .gitignore beside
# it), the example's data file, the desired states, and generated outputs.
GENERATED = re.compile(r"^(dvc\.lock|metrics/.*|plots/.*|models/.*)$")


def fresh_clone(root: Path) -> Path:
    """The files git tracks here, committed as a new repository's first commit."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in tracked:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "the template")
    return root


def status(root: Path) -> list[str]:
    return sh(root, "git", "status", "--porcelain").stdout.splitlines()


@dataclass(frozen=True)
class Adoption:
    """A fresh clone that adopted one data set: `make adopt`, then `make run` and the
    template tests (None: not reached, an earlier step failed)."""

    root: Path
    name: str
    adopt: subprocess.CompletedProcess[str]
    changed: list[str]  # git status right after `make adopt`
    run: subprocess.CompletedProcess[str] | None
    tests: subprocess.CompletedProcess[str] | None


def adopt_run_and_test(name: str, root: Path) -> Adoption:
    """Adopt ``name`` in a fresh clone at ``root``, run the pipeline, run the template
    tests (with databases of their own: another adoption's tests may run meanwhile)."""
    load, args = DATASETS[name]
    fresh_clone(root)
    data = root.parent / f"{name}.csv"
    load().to_csv(data, index=False)
    adopt = make(root, "adopt", f"DATA={data}", *(f"{k}={v}" for k, v in args.items()))
    changed = status(root)
    if adopt.returncode != 0:
        return Adoption(root, name, adopt, changed, None, None)
    # UV is a no-op here (this test's environment): bring the exported requirements
    shutil.copytree(REPO / "build", root / "build", dirs_exist_ok=True)
    run = make(root, "run")
    if run.returncode != 0:
        return Adoption(root, name, adopt, changed, run, None)
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "-m", TEMPLATE_TESTS[name]],
        cwd=root, capture_output=True, text=True, check=False,
        env=env(root) | {"MODELOPS_TEST_DATABASE": f"adopted_{name.replace('-', '_')}"},
    )  # fmt: skip
    return Adoption(root, name, adopt, changed, run, tests)


STARTED: dict[str, Future[Adoption]] = {}


def start(config: pytest.Config) -> dict[str, Future[Adoption]]:
    """Every data set adopted, run and tested in the background, side by side, once per
    session (tests/integration/conftest.py starts it as collection ends): each is
    mostly one busy process at a time."""
    if not STARTED:
        base = Path(tempfile.mkdtemp(prefix="adopt-"))
        pool = ThreadPoolExecutor(len(DATASETS))
        config.add_cleanup(lambda: shutil.rmtree(base, ignore_errors=True))
        config.add_cleanup(pool.shutdown)  # first: cleanups run last in, first out
        STARTED.update(
            {name: pool.submit(adopt_run_and_test, name, base / name / "repo") for name in DATASETS}
        )
    return STARTED


@pytest.fixture(scope="module")
def adoptions(pytestconfig: pytest.Config) -> dict[str, Future[Adoption]]:
    """The adoptions, started now unless they have been already."""
    return start(pytestconfig)


@pytest.fixture(scope="module", params=list(DATASETS))
def adopted(request, adoptions) -> Adoption:
    """One data set's adoption, once it is done."""
    found: Adoption = adoptions[request.param].result()
    assert found.adopt.returncode == 0, found.adopt.stdout + found.adopt.stderr
    return found


def test_adopt_changes_only_params_the_data_file_and_outputs(adopted):
    root, name, done = adopted.root, adopted.name, adopted.adopt
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["data"] == {"source": "files", "path": f"data/{name}.csv"}
    assert "simulator" not in params
    changed = {line[3:] for line in adopted.changed}
    allowed = {"params.yaml", "data/.gitignore", f"data/{name}.csv.dvc", "data/raw.dvc"}
    allowed |= {f"deploy/environments/{env}.yaml" for env in ("local", "staging", "production")}
    allowed |= {
        f"deploy/k8s/overlays/{env}/kustomization.yaml" for env in ("staging", "production")
    }
    assert {c for c in changed if not GENERATED.match(c)} <= allowed, changed
    assert f"data/{name}.csv.dvc" in changed
    assert not (root / "data/raw.dvc").exists()
    assert "Review next" in done.stdout
    assert not EXAMPLE_WORDS.search(done.stdout + (root / "params.yaml").read_text())
    deployed = [
        *(root / "deploy").glob("environments/*.yaml"),
        *(root / "deploy").glob("k8s/**/*.yaml"),
    ]
    assert not [p for p in deployed if "card-fraud" in p.read_text()], "the example's name stays"


def test_adopting_twice_is_refused_and_changes_nothing(adopted):
    root, name = adopted.root, adopted.name
    before = {p: p.read_bytes() for p in (root / "params.yaml", root / f"data/{name}.csv.dvc")}
    listed = status(root)
    again = make(root, "adopt", f"DATA={root / 'data' / f'{name}.csv'}", "TARGET=x")
    assert again.returncode != 0
    assert "adopted already" in again.stdout + again.stderr
    assert status(root) == listed
    assert all(p.read_bytes() == b for p, b in before.items())


def test_unreadable_data_is_refused_and_changes_nothing(tmp_path):
    root = fresh_clone(tmp_path / "repo")
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"not parquet at all")
    done = make(root, "adopt", f"DATA={bad}", "TARGET=y")
    assert done.returncode != 0
    assert "cannot read it" in done.stdout + done.stderr
    assert status(root) == []


def test_run_template_tests_and_a_neutral_pull_request_pass(adopted):
    root, name, run, tests = adopted.root, adopted.name, adopted.run, adopted.tests
    assert run is not None
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "ROC-AUC" in run.stdout
    outputs = [root / "models/model_card.md", root / "models/lineage.json"]
    outputs += [*(root / "plots").glob("*.csv"), *(root / "metrics").glob("*.json")]
    written = "\n".join(p.read_text() for p in outputs)
    assert not EXAMPLE_WORDS.search(run.stdout + run.stderr + written)

    assert tests is not None
    assert tests.returncode == 0, tests.stdout[-4000:]
    assert " passed" in tests.stdout

    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", f"adopt {name}")
    sh(root, "git", "checkout", "-q", "-b", "neutral")
    params = root / "params.yaml"
    params.write_text(
        params.read_text().replace("l2_regularization: 1.0", "l2_regularization: 0.9")
    )
    sh(root, "git", "commit", "-qam", "a neutral change")
    make(root, "pr", "BASE=main")
    verdict = json.loads((root / "reports/pr/verdict.json").read_text())
    failed = [g for g in verdict["failed"] if not g.startswith("baseline:")]
    assert failed == [], verdict["gates"]
    assert any(g["name"] == "behaviour" and g["status"] == "pass" for g in verdict["gates"])
    parity = json.loads((root / "reports/pr/parity.json").read_text())
    assert parity["status"] == "measured", parity["error"]
    assert (parity["score_mismatches"], parity["decision_mismatches"]) == (0, 0), parity
    report = (root / "reports/pr/report.md").read_text()
    assert not EXAMPLE_WORDS.search(report)


def test_a_bad_batch_of_adopted_data_fails_the_pull_request_at_validation(adopted):
    """A files source through the PR check: new rows with an unknown category."""
    root, name = adopted.root, adopted.name
    if name != "awkward":
        pytest.skip("one data set is enough for the data path")
    committed = sh(root, "git", "show", "main:params.yaml").stdout
    assert "source: files" in committed, "the test before this one commits the adoption"
    sh(root, "git", "checkout", "-q", "-f", "main")
    sh(root, "git", "checkout", "-q", "-b", "bad-batch")
    data = root / f"data/{name}.csv"
    lines = data.read_text().splitlines()
    bad = lines[1].split(",")
    bad[0], bad[4] = "9999-BAD", "Three year"  # a new id; Contract: not a category
    data.write_text("\n".join([*lines, ",".join(bad)]) + "\n")
    sh(root, "python", "-m", "dvc", "add", "-q", str(data))
    sh(root, "git", "commit", "-qam", "a new batch of customers")
    done = make(root, "pr", "BASE=main")
    assert done.returncode != 0
    verdict = json.loads((root / "reports/pr/verdict.json").read_text())
    assert verdict["failed"] == ["data_validation"]
    reason = next(g["reason"] for g in verdict["gates"] if g["name"] == "data_validation")
    assert "column 'Contract': not one of the categories" in reason
    assert f"data/{name}.csv line {len(lines) + 1} (customerID=9999-BAD)" in reason


def test_a_later_template_update_merges_without_conflict(adopted):
    """Upstream changes a stage's code and tests, and commits the example's regenerated
    outputs with them; merged into the adopted copy: no conflict, the code and tests
    arrive, the adopted copy keeps its own outputs (.gitattributes, `make setup`)."""
    root = adopted.root
    committed = sh(root, "git", "show", "main:params.yaml").stdout
    assert "source: files" in committed, "an earlier test of this module commits the adoption"
    sh(root, "git", "checkout", "-q", "-f", "main")
    ours = (root / "dvc.lock").read_text()
    template = sh(root, "git", "rev-list", "--max-parents=0", "HEAD").stdout.strip()
    sh(root, "git", "checkout", "-q", "-b", "upstream", template)
    for path in ("src/modelops/training/evaluate.py", "tests/test_config.py"):
        with (root / path).open("a") as handle:
            handle.write("\n# a later template improvement\n")
    for path in ("dvc.lock", "models/lineage.json", "metrics/metrics.json"):
        text = (root / path).read_text()
        (root / path).write_text(text.replace("md5", "md5 ", 1))  # regenerated upstream
    sh(root, "git", "commit", "-qam", "template: an improvement, outputs regenerated")
    sh(root, "git", "checkout", "-q", "main")
    merged = sh(root, "git", "merge", "--no-edit", "upstream", check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert (
        "a later template improvement" in (root / "src/modelops/training/evaluate.py").read_text()
    )
    assert "a later template improvement" in (root / "tests/test_config.py").read_text()
    assert (root / "dvc.lock").read_text() == ours
