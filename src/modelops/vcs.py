"""Git and DVC, run as subprocesses: the one place that calls them.

DVC runs as ``python -m dvc`` of this environment, so the version is the locked one.
Failures raise VcsError (an input error: the message quotes the command's own words).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelops.errors import InputError

Where = Path | str


class VcsError(InputError):
    """A git or DVC command failed."""


def _run(
    command: list[str], cwd: Where | None, env: Mapping[str, str] | None, check: bool
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        shown = " ".join(command[2:] if command[0] == sys.executable else command)
        raise VcsError(f"{shown} failed:\n{(done.stderr or done.stdout).strip()}")
    return done


def git(*args: str, cwd: Where = ".", check: bool = True) -> str:
    """Run git; return its stripped stdout."""
    return _run(["git", *args], cwd, None, check).stdout.strip()


def git_bytes(*args: str, cwd: Where = ".") -> bytes | None:
    """Run git; return its raw stdout, or None when it failed (``git show rev:missing``)."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    return done.stdout if done.returncode == 0 else None


def dvc(
    *args: str, cwd: Where | None = None, env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the DVC command line of this environment."""
    return _run([sys.executable, "-m", "dvc", *args], cwd, env, check)


def python(
    *args: str, cwd: Where | None = None, env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run this environment's Python (``-m modelops.cli ...`` in another worktree)."""
    return _run([sys.executable, *args], cwd, env, check)


def dvc_streamed(*args: str) -> tuple[str, int]:
    """Run DVC with its output passed through to stderr as it comes; return the output
    and the exit code."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        sys.stderr.write(line)
        lines.append(line)
    return "".join(lines), proc.wait()


def git_state(repo: Where = ".") -> dict[str, Any]:
    """HEAD commit and whether the work tree has uncommitted changes (None outside git)."""
    try:
        status = git("status", "--porcelain", "--untracked-files=no", cwd=repo)
        commit: str | None = git("rev-parse", "HEAD", cwd=repo)
    except (OSError, VcsError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status)}


def changed_files(base_commit: str | None, repo: Where = ".") -> list[str] | None:
    """Files HEAD changes since it branched from ``base_commit`` (None when unknown)."""
    if not base_commit:
        return None
    try:
        return git("diff", "--name-only", f"{base_commit}...HEAD", cwd=repo).split()
    except VcsError:
        return None


def with_pythonpath(src: Path) -> dict[str, str]:
    """This environment with ``src`` first on PYTHONPATH (another worktree's code)."""
    return {**os.environ, "PYTHONPATH": str(src)}
