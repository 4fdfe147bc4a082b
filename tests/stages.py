"""Run a pipeline stage's script (pipelines/<name>.py) in-process, in the current
directory, as `dvc repro` runs it: for tests of what a stage writes."""

from __future__ import annotations

import importlib.util
import logging
from types import ModuleType

from modelops.config import Settings
from tests.conftest import REPO


def stage_script(name: str) -> ModuleType:
    """A fresh module of ``pipelines/<name>.py`` (patching it affects no other test)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / f"pipelines/{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_stage_script(name: str, settings: Settings, script: ModuleType | None = None) -> None:
    """Run the stage's body with ``settings`` (no argument parsing, no exit)."""
    (script or stage_script(name)).main(settings, logging.getLogger(f"test.{name}"))
