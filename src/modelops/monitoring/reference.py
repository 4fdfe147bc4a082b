"""What a served version was at training time: its lineage (metrics, thresholds, when its
training data ended) and its reference profile (profile.py), found for a model tag as
the prediction log names it (``<model>:<id or vX.Y.Z>``).

Looked up in order: the pipeline's current outputs (the tag names this model), the
registry (a registered version's files at its commit, from git or DVC), this machine's
BentoML model store. A version found nowhere is monitored without a reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelops import paths
from modelops.config import Settings
from modelops.monitoring.profile import Profile
from modelops.release.registry import VERSION, ReleaseError, find


def read_at(root: Path, settings: Settings, tag: str, path: Path) -> bytes | None:
    """The bytes of ``path`` (a pipeline output, e.g. models/lineage.json) as the version
    ``tag`` was made, or None when the version is found nowhere."""
    name, _, version = tag.partition(":")
    current = root / paths.LINEAGE
    if current.exists() and json.loads(current.read_text())["model_id"] == f"{name}-{version}":
        return (root / path).read_bytes() if (root / path).exists() else None
    if name == settings.model.name and VERSION.fullmatch(version):
        try:
            commit = find(root, name, version).commit
        except ReleaseError:
            return None
        import dvc.api  # slow import: only when needed

        with dvc.api.open(str(path), repo=str(root), rev=commit, mode="rb") as src:
            return bytes(src.read())
    return _from_store(tag, path)


def lineage(root: Path, settings: Settings, tag: str) -> dict[str, Any] | None:
    """The lineage of version ``tag``, or None when it is found nowhere."""
    found = read_at(root, settings, tag, paths.LINEAGE)
    return None if found is None else dict(json.loads(found))


def profile(root: Path, settings: Settings, tag: str) -> Profile | None:
    """The reference profile of version ``tag``, or None when it has none."""
    found = read_at(root, settings, tag, paths.PROFILE)
    return None if found is None else Profile.from_dict(json.loads(found))


def _from_store(tag: str, path: Path) -> bytes | None:
    """``path``'s file name in the BentoML store's copy of ``tag``."""
    import bentoml  # slow import: only when needed
    from bentoml.exceptions import NotFound

    try:
        stored = Path(bentoml.models.get(tag).path) / path.name
    except (NotFound, ValueError):
        return None
    return stored.read_bytes() if stored.exists() else None
