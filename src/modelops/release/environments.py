"""What each environment serves, read from its desired-state file: the files in
deploy/environments/ are the truth of where a version runs (GTO's stage tags record
only that it got there)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from modelops.vcs import git

ENVIRONMENTS = Path("deploy/environments")
ROLES = ("champion", "challenger")


@dataclass(frozen=True)
class Deployment:
    """A model tag named by one environment's desired state."""

    environment: str
    role: str  # champion | challenger
    strategy: str
    since: str  # date of the commit that put the tag in the file ("" if not committed)


def deployments(root: Path) -> dict[str, list[Deployment]]:
    """Model tag -> every environment that names it, and since when."""
    found: dict[str, list[Deployment]] = {}
    for path in sorted((root / ENVIRONMENTS).glob("*.yaml")):
        state = yaml.safe_load(path.read_text()) or {}
        strategy = (state.get("strategy") or {}).get("type", "single")
        for role in ROLES:
            tag = state.get(role)
            if not tag:
                continue
            relative = str(path.relative_to(root))
            since = git("log", "-1", "--format=%cs", f"-S{tag}", "--", relative, cwd=root)
            found.setdefault(tag, []).append(Deployment(path.stem, role, strategy, since))
    return found


def changed(root: Path, base: str, stages: list[str]) -> list[str]:
    """The release stages whose desired-state file ``base``..HEAD changes, in stage order."""
    files = git("diff", "--name-only", base, "HEAD", "--", str(ENVIRONMENTS), cwd=root).split()
    touched = {Path(f).stem for f in files}
    return [stage for stage in stages if stage in touched]
