"""A temporary git repository with pipeline outputs and verdicts, for the release tests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from modelops import paths

NAME = "churn"


def git(root: Path, *args: str) -> str:
    env = os.environ | {
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    }  # fmt: skip
    done = subprocess.run(
        ["git", *args], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def lineage(model_md5: str) -> dict:
    return {
        "model_id": f"{NAME}-{model_md5[:12]}",
        "model": {"md5": model_md5},
        "data": {p: {"md5": f"{p}-md5"} for p in ("raw", "train", "holdout")},
        "metrics": {"roc_auc": {"value": 0.91}, "log_loss": {"value": 0.2}},
        "decision": {"threshold": 0.3, "decline_threshold": 0.8},
    }


def trained(root: Path, model_md5: str, verdict: str = "PASS", judged: str | None = None) -> None:
    """Commit a pipeline output (lineage) and write the gates' verdict of it."""
    (root / paths.LINEAGE).parent.mkdir(parents=True, exist_ok=True)
    (root / paths.LINEAGE).write_text(json.dumps(lineage(model_md5)))
    git(root, "add", "-A")
    git(root, "commit", "-qm", f"model {model_md5}")
    (root / paths.VERDICT).parent.mkdir(parents=True, exist_ok=True)
    model_id = judged or f"{NAME}-{model_md5[:12]}"
    failed = [] if verdict == "PASS" else ["champion:roc_auc"]
    (root / paths.VERDICT).write_text(
        json.dumps({"verdict": verdict, "failed": failed, "model_id": model_id})
    )
