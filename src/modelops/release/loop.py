"""The release part of `make run`: the loop in a few lines, in a temporary git repository
made from this project's pipeline outputs and with a BentoML store of its own, so
nothing here changes (no tag, no commit, no model saved): the gates judge the model,
`make release` registers it, `make promote` and `make deploy` take it through staging to
production, and `make versions` shows where it runs.

Run as ``python -m modelops.release.loop`` (it sets BENTOML_HOME before BentoML loads).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from modelops import paths
from modelops.vcs import git

COPIED = (
    Path("params.yaml"),
    paths.MODEL,
    paths.LINEAGE,
    paths.TRAIN,
    paths.HOLDOUT,
    paths.TRAIN_RECORD,
    paths.VALIDATION_REPORT,
    paths.METRICS,
    paths.BASELINE_METRICS,
    paths.SLICES,
    paths.HOLDOUT_SCORES,
    Path("deploy/environments"),
)
IDENTITY = {
    "GIT_AUTHOR_NAME": "modelops demo", "GIT_AUTHOR_EMAIL": "demo@localhost",
    "GIT_COMMITTER_NAME": "modelops demo", "GIT_COMMITTER_EMAIL": "demo@localhost",
}  # fmt: skip


def copy_project(source: Path, root: Path) -> None:
    """The files the loop reads, committed in a new repository at ``root``."""
    for relative in COPIED:
        if not (source / relative).exists():
            continue
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if (source / relative).is_dir():
            shutil.copytree(source / relative, target)
        else:
            shutil.copy2(source / relative, target)
    (root / ".gitignore").write_text("reports/\n")
    git("init", "-q", "-b", "main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-qm", "the pipeline's outputs", cwd=root)


def main() -> int:
    """Run the loop in a temporary repository; print a few lines."""
    source = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="release-loop-") as folder:
        root = Path(folder) / "repo"
        root.mkdir()
        os.environ.update(IDENTITY)
        os.environ["BENTOML_HOME"] = str(Path(folder) / "bentoml")
        copy_project(source, root)
        os.chdir(root)
        from modelops.config import load_settings
        from modelops.release import deploy, promote, registry, show
        from modelops.review.check import run_gates

        settings = load_settings("params.yaml")
        judged = run_gates(settings)
        print(f"  gates      {judged['verdict']} (make gates)")
        if judged["verdict"] != "PASS":  # the loop stops here, as a release would
            for gate in judged["gates"]:
                if gate["status"] == "fail":
                    print(f"             {gate['name']}: {gate['reason']}")
            print("  no release: a version is registered only when its gates pass")
            return 0
        version = registry.register(root, settings.model.name)
        from modelops.serving import store

        store.save_current(settings, root, version=version.version)
        print(f"  release    {version.tag} on {version.commit[:8]} (make release)")
        try:
            for env in settings.release.stages:
                change = promote.promote(root, settings, env, version.version, "full")
                git("merge", "-q", "--ff-only", change.branch, cwd=root)
                done = deploy.deploy(root, settings, env)
                print(
                    f"  {env:<10} {', '.join(done.serving)} answering at {done.url} "
                    f"(make promote ENV={env} VERSION={version.version} STRATEGY=full; "
                    f"make deploy ENV={env})"
                )
            table = show.versions_table(registry.versions(root, settings.model.name), root)
            print("  " + "\n  ".join(table.splitlines()))
        finally:
            for env in settings.release.stages:
                deploy.stop(root, env)
        print("  on call: make rollback ENV=production (README: Releasing and rolling back)")
    return 0


def run_in_subprocess() -> int:
    """`make run`'s call: the loop in its own process (BentoML reads BENTOML_HOME once)."""
    print("release loop, in a temporary repository (nothing here changes):")
    return subprocess.run([sys.executable, "-m", "modelops.release.loop"], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
