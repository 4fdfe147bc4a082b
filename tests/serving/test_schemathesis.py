"""Schemathesis against a real `bentoml serve` on 127.0.0.1, from the service's own
/docs.json: every operation, positive and negative data, every check (server errors,
status codes, content types and response bodies as documented, schema-valid requests
accepted, schema-invalid ones refused). At least 1,000 cases, no failure."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving.support import running_server

pytestmark = pytest.mark.integration
TOKEN = "schemathesis-admin-token"


def test_the_service_answers_as_its_spec_says(versions, tmp_path):
    schemathesis = Path(sys.executable).parent / "st"
    with running_server(
        tmp_path, {"champion": versions[0]}, env={"MODELOPS_ADMIN_TOKEN": TOKEN}
    ) as server:
        command = [str(schemathesis), "run", f"{server.url}/docs.json", "--checks", "all"]
        command += ["--mode", "all", "--max-examples", "150", "--seed", "13", "--workers", "2"]
        command += ["--header", f"Authorization: Bearer {TOKEN}"]
        run = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=600
        )
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    generated = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert generated, report
    assert int(generated[1]) >= 1000, report
    assert generated[1] == generated[2], report
    assert "Operations:       9 selected / 9 total" in run.stdout, report
