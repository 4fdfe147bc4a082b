"""dvc.yaml, params.yaml and the code agree: every output path the code writes is
declared, every stage depends on its script, and every params section exists."""

from pathlib import Path

import yaml

from modelops import paths

from .conftest import REPO

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
        if isinstance(value, Path) and name not in ("PLOTS", "DVC_LOCK")
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
        for section in stage.get("params", []):
            assert section in PARAMS, section


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
