"""Fixtures of the release tests."""

from __future__ import annotations

from pathlib import Path

import gto.api
import pytest

from modelops.release.registry import register
from tests.conftest import with_updates
from tests.release.support import NAME, git, trained


@pytest.fixture
def repo(tmp_path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / ".gitignore").write_text("reports/\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "init")
    return tmp_path


@pytest.fixture
def release_settings(settings):
    """The test settings with the release tests' model name."""
    return with_updates(settings, model={"name": NAME})


@pytest.fixture
def released(repo):
    """v0.1.0 (served in staging and production) and v0.2.0 (not deployed yet), whose
    image carries v0.1.0 too."""
    trained(repo, "a" * 32)
    register(repo, NAME)
    for stage in ("staging", "production"):
        gto.api.assign(str(repo), NAME, stage, version="v0.1.0")
        deployed = repo / "deploy/environments" / f"{stage}.yaml"
        deployed.parent.mkdir(parents=True, exist_ok=True)
        deployed.write_text(f"champion: {NAME}:v0.1.0\n")
    trained(repo, "b" * 32)
    register(repo, NAME)
    return repo
