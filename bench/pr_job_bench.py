"""The pull-request job, timed step by step as .github/workflows/pr-report.yml runs it,
on the default example, cold and warm.

An "origin" repository is built from this one: main holds the trained default model,
pushed to a local DVC remote, and a branch changes one hyperparameter. Each scenario is
a fresh `git clone` of origin, as a CI runner checks it out:

- cold: empty uv cache (every wheel downloaded) and empty DVC cache: the data, the
  champion and the outputs of the stages the change does not affect are pulled from
  the remote (main pushed them after it merged);
- warm: uv cache warm (what setup-uv restores) and the DVC cache of main (what
  actions/cache restores), so nothing is downloaded.

In both, only the stages the change affects run.

Writes bench/results/pr_job.json and bench/results/pr_job.md.

    .venv/bin/python bench/pr_job_bench.py      # about 8 minutes
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from pipeline_bench import project_copy

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
STEPS = ("setup", "data", "champion", "pr-repro", "behaviour", "parity", "gates", "report")
UV_DIR = REPO / ".tools" / "bin"


def run(root: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run a command; stop the benchmark with its output when it fails."""
    done = subprocess.run(
        args, cwd=root, env=env or os.environ.copy(), capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {root}:\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def make_origin(parent: Path) -> Path:
    """main with the trained default model (pushed), and a branch `tune`."""
    origin = project_copy(parent, "origin", {})
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    git = ("git", "-c", "user.name=b", "-c", "user.email=b@b")
    run(origin, "git", "branch", "-M", "main")
    run(origin, sys.executable, "-m", "modelops.cli", "data", "get", env=env)
    run(origin, sys.executable, "-m", "dvc", "repro", env=env)
    run(origin, sys.executable, "-m", "dvc", "push", "-q", env=env)
    run(origin, "git", "add", "-A")
    run(origin, *git, "commit", "-qm", "base model")
    run(origin, "git", "checkout", "-q", "-b", "tune")
    params = yaml.safe_load((origin / "params.yaml").read_text())
    params["model"]["params"]["learning_rate"] = 0.06
    (origin / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(origin, *git, "commit", "-qam", "learning_rate 0.06")
    return origin


def pr_job(parent: Path, origin: Path, scenario: str) -> dict[str, Any]:
    """Clone origin's branch and time each step of the workflow."""
    clone = parent / scenario
    run(parent, "git", "clone", "-q", "--branch", "tune", str(origin), str(clone))
    run(clone, "git", "branch", "-q", "main", "origin/main")
    env = os.environ | {"PATH": f"{UV_DIR}{os.pathsep}{os.environ['PATH']}"}
    if scenario == "cold":
        env["UV_CACHE_DIR"] = str(parent / "uv-cache-cold")
    else:
        shutil.copytree(origin / ".dvc" / "cache", clone / ".dvc" / "cache")
    remote = origin / ".dvc-remote"
    run(clone, "git", "config", "user.email", "b@b")
    steps: dict[str, float] = {}
    for step in STEPS:
        if step == "data":  # the job's remote: origin's, as secrets would configure it
            run(clone, ".venv/bin/dvc", "remote", "modify", "--local", "local", "url", str(remote))
        started = time.perf_counter()
        args = ["make", "--no-print-directory", step]
        if step == "champion":
            args.append("BASE=main")
        run(clone, *args, env=env, check=step != "gates")  # a FAIL verdict is a result
        steps[step] = round(time.perf_counter() - started, 1)
    source = json.loads((clone / "reports/pr/champion/source.json").read_text())
    pipeline = json.loads((clone / "reports/pr/pipeline.json").read_text())
    verdict = json.loads((clone / "reports/pr/verdict.json").read_text())
    return {
        "steps": steps,
        "total": round(sum(steps.values()), 1),
        "without_setup": round(sum(v for k, v in steps.items() if k != "setup"), 1),
        "champion": source["status"],
        "stages_run": pipeline["stages_run"],
        "verdict": verdict["verdict"],
    }


def markdown(results: dict[str, Any]) -> str:
    header = "| step | " + " | ".join(results["scenarios"]) + " |"
    lines = [
        "# Pull-request job",
        "",
        f"Command: `.venv/bin/python bench/pr_job_bench.py` ({results['date']}).",
        f"Machine: {results['machine']}.",
        "",
        "The default example (480,000 rows; holdout 120,000). The pull request changes",
        "`model.params.learning_rate`. Each scenario is a fresh `git clone`, timed per",
        "make target in the order of .github/workflows/pr-report.yml (the comment",
        "itself is not timed: CML cannot run here).",
        "",
        header,
        "|---|" + "---:|" * len(results["scenarios"]),
    ]
    scenarios = results["scenarios"].values()
    for step in STEPS:
        lines.append(
            f"| `make {step}` | " + " | ".join(f"{s['steps'][step]} s" for s in scenarios) + " |"
        )
    lines += [
        "| **total** | " + " | ".join(f"**{s['total']} s**" for s in scenarios) + " |",
        "| total without `make setup` | "
        + " | ".join(f"{s['without_setup']} s" for s in scenarios)
        + " |",
        "| stages run | "
        + " | ".join(", ".join(s["stages_run"]) or "none" for s in scenarios)
        + " |",
        "| champion | " + " | ".join(s["champion"] for s in scenarios) + " |",
        "| verdict | " + " | ".join(s["verdict"] for s in scenarios) + " |",
        "",
        "cold: empty uv cache (wheels downloaded from PyPI) and empty DVC cache (data,",
        "champion and unaffected stages' outputs pulled from the DVC remote, where main",
        "pushed them). warm: uv cache and main's DVC cache present, as setup-uv and",
        "actions/cache restore them. Either way only the affected stages run. Target:",
        "warm under 2 minutes (repro + champion + gates + report).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pr-job-") as tmp:
        parent = Path(tmp)
        print("building origin (trains the default model) ...", flush=True)
        origin = make_origin(parent)
        scenarios = {}
        for scenario in ("cold", "warm"):
            print(f"{scenario} ...", flush=True)
            scenarios[scenario] = pr_job(parent, origin, scenario)
            print(json.dumps(scenarios[scenario]), flush=True)
    results = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "scenarios": scenarios,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pr_job.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "pr_job.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
