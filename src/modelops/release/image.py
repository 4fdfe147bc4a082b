"""`make image`: the container image of the newest registered version, carrying every
version its record names (``image_carries``), so a cluster can serve a challenger beside
its champion from one image. A version missing from this machine's BentoML store (a fresh
CI runner) is rebuilt from its commit: the model, lineage, training rows and reference
profile from DVC."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from modelops import paths
from modelops.config import Settings
from modelops.release.registry import ReleaseError, Version, find, versions
from modelops.serving import bento, store


def stored(root: Path, settings: Settings, version: Version) -> str:
    """``version``'s model in the BentoML store (``<model>:vX.Y.Z``), saved from its
    commit's DVC outputs when it is not there yet; its tag."""
    import dvc.api  # slow imports: only when needed
    from dvc.exceptions import PathMissingError

    try:
        return store.resolve(version.model_tag)
    except LookupError:
        pass
    with tempfile.TemporaryDirectory(prefix="version-") as folder:
        for path in (paths.MODEL, paths.LINEAGE, paths.TRAIN, paths.PROFILE):
            target = Path(folder) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with dvc.api.open(str(path), repo=str(root), rev=version.commit, mode="rb") as src:
                    target.write_bytes(src.read())
            except PathMissingError:
                if path != paths.PROFILE:  # a version made before profiles were: none
                    raise
        return store.save_current(settings, folder, version.version, commit=version.commit)


def build(root: Path, settings: Settings) -> tuple[Version, str]:
    """The newest version and the tag of its Bento, which packs every version it carries."""
    registered = versions(root, settings.model.name)
    if not registered:
        raise ReleaseError("no registered version: `make release` first")
    newest = registered[-1]
    carried = [find(root, newest.name, v) for v in newest.record.get("image_carries", [])]
    tags = [stored(root, settings, v) for v in carried or [newest]]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=root / "build") as state:
        state.write(f"champion: {newest.model_tag}\nstrategy: {{type: single}}\n")
        state.flush()
        os.environ |= {"MODELOPS_DESIRED_STATE": state.name, "MODELOPS_BUNDLE": " ".join(tags)}
        return newest, bento.build(settings)


def push(root: Path, settings: Settings, repository: str) -> str:
    """Containerize the newest version's Bento as ``<repository>:X.Y.Z`` and push it
    (Docker); the image's name."""
    newest, bento_tag = build(root, settings)
    image = f"{repository.lower()}:{newest.record['image_tag']}"  # OCI: lowercase
    for command in (["bentoml", "containerize", bento_tag, "--image-tag", image],
                    ["docker", "push", image]):  # fmt: skip
        subprocess.run(command, check=True)
    return image
