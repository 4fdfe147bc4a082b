"""The release rules of a desired-state file, on top of its structure (serving/state.py):
an environment of ``release.stages`` names registered versions only (``<model>:vX.Y.Z``,
never ``latest``), each having served in every earlier stage, and a challenger newer
than its champion, both carried by the image of the newer (its record's
``image_carries``: a cluster runs one image per environment). ``local`` is exempt: it
may serve ``<model>:latest``."""

from __future__ import annotations

from pathlib import Path

from modelops.config import Settings
from modelops.release.registry import VERSION, ReleaseError, find, parse
from modelops.serving.state import DesiredState, DesiredStateError, parse_state


def check(root: Path, settings: Settings, path: Path, text: str | None = None) -> DesiredState:
    """The desired state of ``path`` (or ``text``, meant for it) if it keeps the release
    rules; DesiredStateError naming the file and every field that breaks one."""
    text = path.read_text() if text is None else text
    state = parse_state(text, str(path), lambda tag: tag)  # tags: the registry's
    stages = settings.release.stages
    if path.stem not in stages:
        return state
    earlier = stages[: stages.index(path.stem)]
    problems, numbers, found = [], {}, {}
    for role in ("champion", "challenger"):
        tag = getattr(state, role)
        if tag is None:
            continue
        name, _, version = tag.partition(":")
        if name != settings.model.name or not VERSION.fullmatch(version):
            problems.append(
                f"{role}: '{tag}' is not a registered version: name one as "
                f"{settings.model.name}:vX.Y.Z (`make versions` lists them)"
            )
            continue
        try:
            registered = find(root, name, version)
        except ReleaseError as exc:
            problems.append(f"{role}: {exc}")
            continue
        numbers[role], found[role] = parse(version), registered
        for stage in earlier:
            if stage not in registered.stages:
                problems.append(
                    f"{role}: {tag} has not served in {stage} yet: promote it there first "
                    f"(`make promote ENV={stage} VERSION={version} ...`)"
                )
    if "challenger" in numbers and numbers["challenger"] <= numbers["champion"]:
        problems.append(
            f"challenger: {state.challenger} is not newer than the champion {state.champion}"
        )
    if len(found) == 2:
        newer = max(found.values(), key=lambda v: v.number)
        carries = newer.record.get("image_carries", [newer.version])
        for role, registered in found.items():
            if registered.version not in carries:
                problems.append(
                    f"{role}: {registered.model_tag} is not in the image of {newer.version} "
                    f"(it carries {', '.join(carries)}): serve {newer.version} alone "
                    "(STRATEGY=full) or beside a version its image carries"
                )
    if problems:
        raise DesiredStateError(f"{path}: refused:\n  " + "\n  ".join(problems))
    return state
