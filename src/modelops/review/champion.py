"""The champion: the model of the commit a pull request merges into.

``fetch`` reads the base commit's ``dvc.lock`` and obtains that exact model from the DVC
cache or remote (``dvc.api.open`` at the revision). When it cannot, it retrains the base
commit's pipeline in a temporary git worktree, with the base commit's own code. The
base commit's params, lock and metrics come from git. What was done, and why, is written
to ``reports/pr/champion/source.json`` so the report can say it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from modelops import paths
from modelops.errors import InputError
from modelops.io import write_json
from modelops.training.lineage import file_md5
from modelops.vcs import VcsError, git, git_bytes, python, with_pythonpath

log = logging.getLogger(__name__)

# Files of the base commit that git holds (DVC metrics and lineage are cache: false).
GIT_FILES = (
    "params.yaml",
    "dvc.lock",
    str(paths.VALIDATION_REPORT),
    str(paths.TRAIN_RECORD),
    str(paths.METRICS),
    str(paths.BASELINE_METRICS),
    str(paths.SLICES),
    str(paths.LINEAGE),
)


class ChampionError(InputError):
    """The base revision cannot be resolved."""


def resolve(base: str) -> str:
    """The commit id of ``base`` (a branch, tag or commit)."""
    commit = git("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", check=False)
    if not commit:
        raise ChampionError(
            f"base revision '{base}' is not a commit in this clone; fetch it first "
            "(in GitHub Actions check out with fetch-depth: 0)"
        )
    return commit


def copy_git_files(commit: str, target: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """Copy the base commit's params, lock and metrics into ``target``; list what exists."""
    found = []
    for name in (*GIT_FILES, *extra):
        content = git_bytes("show", f"{commit}:{name}")
        if content is not None:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(content)
            found.append(name)
    return found


def locked_model_md5(lock_file: Path) -> str | None:
    """The model's md5 in a ``dvc.lock``, or None when it has no trained model."""
    if not lock_file.exists():
        return None
    lock = yaml.safe_load(lock_file.read_text()) or {}
    for stage in lock.get("stages", {}).values():
        for out in stage.get("outs", []):
            if out.get("path") == str(paths.MODEL):
                return str(out["md5"])
    return None


def fetch_from_dvc(commit: str, target: Path) -> None:
    """Write the model of ``commit`` to ``target`` from the DVC cache or remote."""
    import dvc.api  # slow import: only when needed

    with dvc.api.open(str(paths.MODEL), repo=".", rev=commit, mode="rb") as src:
        target.write_bytes(src.read())


def retrain(commit: str, target: Path) -> None:
    """Rerun the base commit's pipeline up to ``train`` in a temporary worktree, with
    that commit's code (PYTHONPATH) and this clone's DVC cache, and keep its model."""
    cache = Path(git("rev-parse", "--show-toplevel")) / ".dvc" / "cache"
    with tempfile.TemporaryDirectory(prefix="champion-") as tmp:
        tree = Path(tmp) / "base"
        git("worktree", "add", "--detach", "--force", str(tree), commit)
        env = with_pythonpath(tree / "src")
        try:
            for args in (
                ("-m", "dvc", "cache", "dir", "--local", str(cache)),
                ("-m", "modelops.cli", "data", "get"),
                ("-m", "dvc", "repro", "train"),
            ):
                done = python(*args, cwd=tree, env=env, check=False)
                if done.returncode != 0:
                    tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
                    raise RuntimeError(f"`{' '.join(args)}` failed in the base worktree:\n{tail}")
            shutil.copyfile(tree / paths.MODEL, target)
        finally:
            git("worktree", "remove", "--force", str(tree), check=False)
            git("worktree", "prune", check=False)


def fetch(
    base: str,
    out_dir: Path = paths.CHAMPION,
    *,
    extra_files: tuple[str, ...] = (),
    allow_retrain: bool = True,
) -> dict[str, Any]:
    """Obtain the champion of ``base`` into ``out_dir``; return (and write) its source.
    ``extra_files`` are more base-commit files to copy (the raw data's .dvc file)."""
    commit = resolve(base)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    base_dir = out_dir / "base"
    base_dir.mkdir(parents=True)
    source: dict[str, Any] = {
        "base": base,
        "commit": commit,
        "files": copy_git_files(commit, base_dir, extra_files),
    }
    expected = locked_model_md5(base_dir / "dvc.lock")
    model = out_dir / "model.joblib"
    if expected is None:
        source |= {"status": "none", "reason": f"{base} ({commit[:8]}) has no trained model"}
    else:
        source |= _obtain(commit, model, expected, allow_retrain=allow_retrain)
    write_json(source, out_dir / "source.json")
    log.info("champion: %s (%s)", source["status"], source.get("reason") or commit[:8])
    return source


def _obtain(commit: str, model: Path, expected: str, *, allow_retrain: bool) -> dict[str, Any]:
    """Try DVC, then retraining; describe the outcome."""
    try:
        fetch_from_dvc(commit, model)
        return {"status": "fetched", "reason": "from the DVC cache or remote", "md5": expected}
    except Exception as exc:  # DVC raises many types (missing cache, remote, credentials)
        dvc_error = f"{type(exc).__name__}: {exc}".strip()[:400]
    log.warning("champion not in the DVC cache or remote (%s); retraining the base", dvc_error)
    if not allow_retrain:
        return {"status": "none", "reason": f"not in the DVC cache or remote: {dvc_error}"}
    try:
        retrain(commit, model)
    except (RuntimeError, VcsError) as exc:
        model.unlink(missing_ok=True)
        return {
            "status": "none",
            "reason": f"not in the DVC cache or remote ({dvc_error}); retraining failed: {exc}",
        }
    md5 = file_md5(model)
    return {
        "status": "retrained",
        "reason": f"not in the DVC cache or remote ({dvc_error}); retrained the base commit",
        "md5": md5,
        "identical": md5 == expected,
    }
