"""What retrain.yml decides: whether a retraining branch changes data only, whether it may
merge by itself (``monitoring.retrain.automerge``), and the commit statuses it reports
for checks that a pull request opened with the default GITHUB_TOKEN never triggers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelops import paths
from modelops.config import Settings
from modelops.errors import InputError
from modelops.vcs import changed_files


@dataclass(frozen=True)
class Decision:
    """Whether the retraining pull request merges by itself, and why (not)."""

    merge: bool
    why: str


def pipeline_outputs(root: Path) -> set[str]:
    """Every output, metric and plot path dvc.yaml declares."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    found = set()
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                found.add(next(iter(entry)) if isinstance(entry, dict) else str(entry))
    return found


def not_data(root: Path, base: str) -> list[str]:
    """The files ``base``...HEAD changes other than data (``*.dvc``), dvc.lock and the
    pipeline's outputs: empty when the change is data only."""
    changed = changed_files(base, root)
    if changed is None:
        raise InputError(f"cannot diff {base}...HEAD: fetch the base branch (fetch-depth: 0)")
    outputs = pipeline_outputs(root)
    allowed = {str(paths.DVC_LOCK)}
    return [f for f in changed if not (f.endswith(".dvc") or f in allowed or f in outputs)]


def decide(root: Path, settings: Settings, base: str) -> Decision:
    """Merge by itself only when the setting allows it, every gate passed, and only data
    changed; otherwise a person reviews."""
    if not settings.monitoring.retrain.automerge:
        return Decision(False, "monitoring.retrain.automerge is false: a person reviews")
    verdict = _verdict(root)
    if verdict.get("verdict") != "PASS":
        failed = ", ".join(verdict.get("failed", [])) or "no verdict"
        return Decision(False, f"the gates did not pass ({failed}): a person reviews")
    others = not_data(root, base)
    if others:
        return Decision(False, f"not data only ({', '.join(others[:5])}): a person reviews")
    return Decision(True, "every gate passed and only data changed")


def model_report_status(root: Path) -> dict[str, str]:
    """The "model report" commit status the gates' verdict gives (GitHub statuses API)."""
    verdict = _verdict(root)
    passed = verdict.get("verdict") == "PASS"
    failed = ", ".join(verdict.get("failed", []))
    return {
        "state": "success" if passed else "failure",
        "context": "model report",
        "description": ("every gate passed" if passed else f"failed: {failed}")[:140],
    }


def _verdict(root: Path) -> dict[str, Any]:
    path = root / paths.VERDICT
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()))
