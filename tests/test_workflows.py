"""Workflows stay thin and safe: every `run:` step is a make target or project CLI call
that exists, actions are pinned by commit SHA, permissions and timeouts are set, and
actionlint and zizmor are clean."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

WORKFLOWS = sorted((REPO / ".github/workflows").glob("*.yml"))
MAKE_TARGETS = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.MULTILINE))
CLI_COMMANDS = ("modelops ", "dvc ")


def steps():
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        for job_name, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                yield path.name, job_name, step


def test_there_are_workflows():
    assert any(p.name == "ci.yml" for p in WORKFLOWS)


@pytest.mark.parametrize(("workflow", "job", "step"), list(steps()))
def test_run_steps_call_existing_make_targets_or_the_cli(workflow, job, step):
    command = step.get("run")
    if command is None:
        return
    for line in filter(None, (x.strip() for x in command.splitlines())):
        if line.startswith("make "):
            targets = [t for t in line.split()[1:] if not t.startswith("-")]
            assert set(targets) <= MAKE_TARGETS, f"{workflow}/{job}: unknown target in {line!r}"
        else:
            assert line.startswith(CLI_COMMANDS), f"{workflow}/{job}: {line!r} is not thin"


@pytest.mark.parametrize(("workflow", "job", "step"), list(steps()))
def test_actions_are_pinned_by_commit_sha(workflow, job, step):
    uses = step.get("uses")
    if uses and not uses.startswith("./"):
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), f"{workflow}/{job}: {uses}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege_and_timeouts(path):
    workflow = yaml.safe_load(path.read_text())
    assert "permissions" in workflow, f"{path.name}: no top-level permissions"
    for name, job in workflow["jobs"].items():
        assert "timeout-minutes" in job, f"{path.name}/{name}: no timeout"


def tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(found).exists(), f"{name} is not installed (it is a dev dependency)"
    return found


def test_actionlint_is_clean():
    done = subprocess.run(
        [tool("actionlint")], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_is_clean():
    done = subprocess.run(
        [tool("zizmor"), "--offline", "--quiet", ".github/workflows"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
