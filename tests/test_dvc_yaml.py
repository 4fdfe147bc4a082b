"""dvc.yaml, params.yaml, dvc.lock and the code agree: every output path the code writes
is declared, every stage depends on its script, every params section exists, and the
committed lock was made by this code."""

from pathlib import Path

import pytest
import yaml

from modelops import paths
from modelops.training.lineage import file_md5
from tests.conftest import REPO

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def declared(stage: dict, kind: str) -> set[str]:
    return {next(iter(item)) if isinstance(item, dict) else item for item in stage.get(kind, [])}


def test_every_output_the_code_writes_is_declared():
    outputs = set()
    for stage in DVC["stages"].values():
        outputs |= declared(stage, "outs") | declared(stage, "metrics")
    written = {
        str(value)
        for name, value in vars(paths).items()
        if isinstance(value, Path)
        and name not in ("PLOTS", "DVC_LOCK")
        and not value.is_relative_to(paths.PR)  # the PR check's files are not DVC outputs
    }
    assert written <= outputs
    plots = {p for p in outputs if p.startswith(f"{paths.PLOTS}/")}
    assert {"plots/roc.csv", "plots/precision_recall.csv", "plots/calibration.csv"} <= plots


def test_each_stage_runs_and_depends_on_its_own_script():
    for name, stage in DVC["stages"].items():
        assert stage["cmd"] == f"python pipelines/{name}.py"
        assert f"pipelines/{name}.py" in declared(stage, "deps")
        assert (REPO / f"pipelines/{name}.py").exists()


def test_code_dependencies_exist_and_params_sections_exist():
    for stage in DVC["stages"].values():
        for dep in declared(stage, "deps"):
            if dep.endswith(".py"):
                assert (REPO / dep).exists(), dep
        for key in stage.get("params", []):  # a section, or a key in one: model.fit_rows
            value = PARAMS
            for part in key.split("."):
                assert isinstance(value, dict), key
                assert part in value, key
                value = value[part]


def test_hyperparameters_only_feed_train_and_evaluate():
    readers = {name for name, stage in DVC["stages"].items() if "model" in stage.get("params", [])}
    assert readers == {"train", "evaluate"}


def test_every_plot_file_is_an_output():
    outputs = set()
    for stage in DVC["stages"].values():
        outputs |= declared(stage, "outs")
    for plot in DVC["plots"]:
        (definition,) = plot.values()
        assert set(definition["y"]) <= outputs


# Modules that move bytes around (files, logs, errors) but do not shape results.
PLUMBING = {"io", "stage", "logs", "errors", "paths", "vcs"}
# config.py validates params.yaml `gates:` with the gate kinds' settings; their rules never
# shape a stage's outputs, and no stage declares the `gates` params section.
VALIDATION_ONLY = "modelops.review.gates"


def modelops_imports(path: Path) -> set[str]:
    """``modelops.x`` modules a file imports, transitively, as repository paths."""
    import ast

    found: set[str] = set()
    todo = [path]
    while todo:
        tree = ast.parse(todo.pop().read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("modelops.")
            ):
                modules = [node.module]
            elif isinstance(node, ast.ImportFrom) and node.module == "modelops":
                modules = [f"modelops.{alias.name}" for alias in node.names]
            else:
                continue
            for module in modules:
                if module.split(".")[-1] in PLUMBING or module.startswith(VALIDATION_ONLY):
                    continue
                base = "src/" + module.replace(".", "/")
                for rel in (f"{base}.py", f"{base}/__init__.py"):
                    if rel not in found and (REPO / rel).exists():
                        found.add(rel)
                        todo.append(REPO / rel)
    return found


def test_stages_depend_on_every_module_they_run():
    for name, stage in DVC["stages"].items():
        missing = modelops_imports(REPO / f"pipelines/{name}.py") - declared(stage, "deps")
        assert not missing, f"stage {name} runs {sorted(missing)} without declaring them"


def test_the_committed_lock_is_in_step_with_the_code():
    """dvc.lock records the md5 of every code file a stage ran; a stale entry means the
    committed outputs were not made by this code (and `make run` would rewrite them)."""
    lock_file = REPO / "dvc.lock"
    if not lock_file.exists():
        pytest.skip("no dvc.lock yet: `make run` writes it")
    stale = sorted(
        {
            dep["path"]
            for stage in yaml.safe_load(lock_file.read_text())["stages"].values()
            for dep in stage.get("deps", [])
            if dep["path"].endswith(".py") and file_md5(REPO / dep["path"]) != dep["md5"]
        }
    )
    assert not stale, f"dvc.lock is out of step with {stale}: run `make repro`, commit dvc.lock"
