"""The model registry is git: GTO tags ``<model>@vX.Y.Z`` on the commit whose pipeline
made the model, each tag's message a JSON record of what the version is.

A version is registered only for a model whose gates passed (``reports/pr/verdict.json``
of that very model) and whose outputs are committed, so the tag's commit reproduces it.
Its record links the model id (lineage), the BentoML model tag the desired states name
(``<model>:vX.Y.Z``), the image tag (OCI tags cannot hold ``@``: ``X.Y.Z``, with the
commit beside it), the data hashes and the key metrics. GTO's own limits are designed
around: versions are ordered by their number, never by tag time (one-second
resolution); the order of stages is enforced by the project (promote.py), not by GTO.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gto.api
import yaml
from gto.exceptions import ArtifactNotFound

from modelops import paths
from modelops.config import Settings
from modelops.errors import InputError
from modelops.vcs import git_state

VERSION = re.compile(r"v(\d+)\.(\d+)\.(\d+)")
BUMPS = ("major", "minor", "patch")
KEY_METRICS = ("roc_auc", "average_precision", "recall_at_review_rate", "cost_per_1k")


class ReleaseError(InputError):
    """A version cannot be registered, or a name is not a registered version."""


@dataclass(frozen=True)
class Version:
    """One registered version of the model."""

    name: str
    version: str  # vX.Y.Z
    commit: str
    created_at: dt.datetime
    record: dict[str, Any]
    stages: tuple[str, ...] = ()  # GTO stages ever assigned to it

    @property
    def tag(self) -> str:
        """The GTO tag: ``<model>@vX.Y.Z``."""
        return f"{self.name}@{self.version}"

    @property
    def model_tag(self) -> str:
        """The BentoML model tag desired states name: ``<model>:vX.Y.Z``."""
        return f"{self.name}:{self.version}"

    @property
    def number(self) -> tuple[int, int, int]:
        """(major, minor, patch), for ordering."""
        return parse(self.version)


def parse(version: str) -> tuple[int, int, int]:
    """(major, minor, patch) of ``vX.Y.Z``; ReleaseError for anything else."""
    found = VERSION.fullmatch(version)
    if found is None:
        raise ReleaseError(f"'{version}' is not a version: expected vX.Y.Z, e.g. v1.2.0")
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


def bumped(latest: str | None, bump: str) -> str:
    """The version after ``latest`` (v0.1.0 when there is none)."""
    if latest is None:
        return "v0.1.0"
    major, minor, patch = parse(latest)
    if bump == "major":
        return f"v{major + 1}.0.0"
    if bump == "minor":
        return f"v{major}.{minor + 1}.0"
    return f"v{major}.{minor}.{patch + 1}"


def versions(root: Path | str, name: str) -> list[Version]:
    """Every registered version of ``name``, oldest number first."""
    try:
        shown_all = gto.api.show(str(root), name, assignments_per_version=-1, versions_per_stage=-1)
    except ArtifactNotFound:  # nothing registered yet
        return []
    found = []
    for shown in shown_all:
        if not shown["registrations"] or not VERSION.fullmatch(shown["version"]):
            continue
        registration = shown["registrations"][0]
        try:
            record = json.loads(registration["message"])
        except (TypeError, ValueError):
            record = {}
        found.append(
            Version(
                name=name,
                version=shown["version"],
                commit=shown["commit_hexsha"],
                created_at=registration["created_at"],
                record=record,
                stages=tuple(sorted({s["stage"] for s in shown["stages"]})),
            )
        )
    return sorted(found, key=lambda v: v.number)


def find(root: Path | str, name: str, version: str) -> Version:
    """The registered ``version`` of ``name``; ReleaseError naming what is registered."""
    registered = versions(root, name)
    for candidate in registered:
        if candidate.version == version:
            return candidate
    known = ", ".join(v.version for v in registered) or "none"
    raise ReleaseError(f"{name}@{version} is not a registered version (registered: {known})")


def record_of(
    lineage: dict[str, Any], version: str, commit: str, carries: list[str] | None = None
) -> dict[str, Any]:
    """What a version is: model id, BentoML and image tags, the versions its image
    carries (``carries``; default itself alone), data hashes, key metrics."""
    name = lineage["model_id"].rsplit("-", 1)[0]
    data = lineage["data"]
    return {
        "model_id": lineage["model_id"],
        "model_md5": lineage["model"]["md5"],
        "bento_model": f"{name}:{version}",
        "image_tag": version.removeprefix("v"),
        "image_carries": carries or [version],
        "commit": commit,
        "data_md5": {part: data[part]["md5"] for part in ("raw", "train", "holdout")},
        "metrics": {k: v["value"] for k, v in lineage["metrics"].items() if k in KEY_METRICS},
        "thresholds": {
            "review": lineage["decision"]["threshold"],
            "decline": lineage["decision"]["decline_threshold"],
        },
    }


def register(root: Path, name: str, bump: str = "minor") -> Version:
    """Register the pipeline's current model as the next version of ``name``: a GTO tag
    on HEAD. Refuses uncommitted outputs, a model without a passing verdict, and a model
    that is registered already."""
    if bump not in BUMPS:
        raise ReleaseError(f"bump '{bump}': expected one of {', '.join(BUMPS)}")
    state = git_state(root)
    if state["dirty"]:
        raise ReleaseError(
            "the working tree has uncommitted changes: commit the pipeline's outputs "
            "(dvc.lock, models/) first, so the tag's commit reproduces the version"
        )
    lineage = json.loads((root / paths.LINEAGE).read_text())
    verdict = _verdict(root)
    if verdict.get("model_id") != lineage["model_id"]:
        raise ReleaseError(
            f"{paths.VERDICT} judged model {verdict.get('model_id')}, not the pipeline's "
            f"{lineage['model_id']}: run `make pr` (or the gates) for this model first"
        )
    if verdict["verdict"] != "PASS":
        raise ReleaseError(f"the gates failed ({', '.join(verdict['failed'])}): not released")
    registered = versions(root, name)
    for old in registered:
        if old.record.get("model_id") == lineage["model_id"]:
            raise ReleaseError(f"model {lineage['model_id']} is registered already as {old.tag}")
    version = bumped(registered[-1].version if registered else None, bump)
    record = record_of(lineage, version, state["commit"], carried(root, name, version))
    gto.api.register(str(root), name, "HEAD", version=version, message=json.dumps(record))
    return find(root, name, version)


def carried(root: Path, name: str, version: str) -> list[str]:
    """The versions the image of ``version`` carries: itself, and every registered version
    a desired state in deploy/environments names now, so a promotion to shadow, canary
    or A/B beside any of them runs in one pod (policy.py refuses any other pairing)."""
    named = {version}
    for path in sorted((root / "deploy/environments").glob("*.yaml")):
        state = yaml.safe_load(path.read_text()) or {}
        for role in ("champion", "challenger"):
            tag = str(state.get(role) or "")
            if tag.startswith(f"{name}:") and VERSION.fullmatch(tag.partition(":")[2]):
                named.add(tag.partition(":")[2])
    return sorted(named, key=parse)


def _verdict(root: Path) -> dict[str, Any]:
    try:
        verdict: dict[str, Any] = json.loads((root / paths.VERDICT).read_text())
    except FileNotFoundError as exc:
        raise ReleaseError(
            f"no {paths.VERDICT}: the gates must pass before a release (`make pr`)"
        ) from exc
    return verdict


def image_tag(root: Path, settings: Settings, env: str) -> str:
    """The OCI image tag a cluster runs for ``env``: that of the newest registered
    version its desired state names (policy.py checks that it carries the other one)."""
    state = yaml.safe_load((root / "deploy/environments" / f"{env}.yaml").read_text()) or {}
    name = settings.model.name
    named = [
        find(root, name, tag.partition(":")[2])
        for tag in (state.get("champion"), state.get("challenger"))
        if tag and tag.startswith(f"{name}:v")
    ]
    if not named:
        raise ReleaseError(f"deploy/environments/{env}.yaml names no registered version")
    return str(max(named, key=lambda v: v.number).record["image_tag"])
