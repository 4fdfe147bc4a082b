"""Promotion and rollback: both are commits to an environment's desired-state file.

``promote`` writes the next state on a new branch ``promote/<env>/<version>-<strategy>`` (through a
temporary worktree, so the checkout in use is untouched) for a pull request; ``rollback``
restores the file as it was before its last change, as a revert commit on the current
branch, so a local service watching the file serves the previous state within seconds.
Both validate the state they write (structure and release rules) before committing.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from modelops.config import Settings
from modelops.errors import InputError
from modelops.release.environments import ENVIRONMENTS
from modelops.release.policy import check
from modelops.vcs import VcsError, git

STRATEGY = re.compile(r"(shadow|blue_green|full)|(canary|ab):(\d+(?:\.\d+)?)")


class PromotionError(InputError):
    """A promotion or rollback that cannot be made as asked."""


@dataclass(frozen=True)
class Change:
    """A commit that changes one environment's desired state."""

    environment: str
    branch: str
    commit: str
    diff: str


def next_state(current: dict, tag: str, strategy: str) -> dict:
    """The desired state after promoting ``tag`` with ``strategy`` (shadow, canary:N,
    ab:N, blue_green: beside the champion; full: it becomes the champion alone)."""
    found = STRATEGY.fullmatch(strategy)
    if found is None:
        raise PromotionError(
            f"strategy '{strategy}': expected shadow, canary:<percent>, ab:<percent>, "
            "blue_green or full"
        )
    kept = {k: v for k, v in current.items() if k in ("automation", "thresholds")}
    if found[1] == "full":
        return {"champion": tag, "strategy": {"type": "single"}, **kept}
    if current.get("champion") == tag:
        raise PromotionError(f"{tag} is the champion already: promote it with STRATEGY=full")
    if found[1]:
        routing: dict = {"type": found[1]}
    else:
        share = float(found[3])
        routing = {
            "type": found[2],
            "percent" if found[2] == "canary" else "challenger_percent": share,
        }
    return {"champion": current.get("champion"), "challenger": tag, "strategy": routing, **kept}


def promote(root: Path, settings: Settings, env: str, version: str, strategy: str) -> Change:
    """Commit the promotion of ``version`` to ``env`` on a new branch; return it."""
    relative = ENVIRONMENTS / f"{env}.yaml"
    path = root / relative
    if not path.exists():
        raise PromotionError(f"{relative}: no such environment")
    current = yaml.safe_load(path.read_text()) or {}
    tag = f"{settings.model.name}:{version}"
    text = _header(path.read_text()) + yaml.safe_dump(
        next_state(current, tag, strategy), sort_keys=False
    )
    check(root, settings, path, text)  # refused here: nothing is committed
    branch = f"promote/{env}/{version}-{strategy.replace(':', '-')}"
    message = f"Promote {settings.model.name} {version} to {env} ({strategy})"
    with tempfile.TemporaryDirectory(prefix="promote-") as folder:
        tree = Path(folder) / "tree"
        try:
            git("worktree", "add", "-q", "-b", branch, str(tree), "HEAD", cwd=root)
        except VcsError as exc:
            raise PromotionError(f"cannot create branch {branch}: {exc}") from exc
        try:
            (tree / relative).write_text(text)
            git("commit", "-q", "-m", message, "--", str(relative), cwd=tree)
            commit = git("rev-parse", "HEAD", cwd=tree)
        finally:
            git("worktree", "remove", "--force", str(tree), cwd=root)
    diff = git("diff", f"{commit}^", commit, "--", str(relative), cwd=root)
    return Change(env, branch, commit, diff)


def rollback(root: Path, settings: Settings, env: str) -> Change:
    """Restore ``env``'s desired state as it was before its last change: a revert commit
    on the current branch. Refused when there is no earlier state or the file has
    uncommitted changes."""
    relative = ENVIRONMENTS / f"{env}.yaml"
    if git("status", "--porcelain", "--", str(relative), cwd=root):
        raise PromotionError(f"{relative} has uncommitted changes: commit or discard them first")
    changes = git("log", "--format=%H", "-n", "2", "--", str(relative), cwd=root).split()
    if len(changes) < 2:
        raise PromotionError(f"{relative} has no earlier committed state to roll back to")
    last = changes[0]
    previous = git("show", f"{last}^:{relative}", cwd=root)
    check(root, settings, root / relative, previous)
    (root / relative).write_text(previous + "\n")
    subject = git("log", "-1", "--format=%s", last, cwd=root)
    message = f'Roll back {env}: revert "{subject}"\n\nThis reverts commit {last}.'
    git("commit", "-q", "-m", message, "--", str(relative), cwd=root)
    commit = git("rev-parse", "HEAD", cwd=root)
    branch = git("rev-parse", "--abbrev-ref", "HEAD", cwd=root)
    return Change(env, branch, commit, git("diff", f"{commit}^", commit, cwd=root))


def _header(text: str) -> str:
    """The file's leading comment lines, kept above the new state."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""
