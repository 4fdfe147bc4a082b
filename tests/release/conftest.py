"""Fixtures of the release tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.release.support import git


@pytest.fixture
def repo(tmp_path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / ".gitignore").write_text("reports/\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "init")
    return tmp_path
