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

In both, only the stages the change affects run. After the warm job, `modelops gates`
is profiled in the warm clone: where its time goes (cProfile, `python -X importtime`),
and the paired bootstrap timed with and without the slices on the same scores.

Writes bench/results/pr_job.json and bench/results/pr_job.md.

    .venv/bin/python bench/pr_job_bench.py      # about 8 minutes
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import pstats
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


# (path suffix, function) -> what it is, in the order the profile table lists them
PROFILED = {
    ("review/check.py", "run_gates"): "run_gates: everything after the imports",
    ("review/compare.py", "compare"): "compare: the comparison",
    ("modelops/io.py", "load_model"): "models loaded (both)",
    ("review/compare.py", "challenger_scores"): "challenger's scores read (evaluate's)",
    ("training/evaluate.py", "score_models"): "champion scored on the holdout",
    ("review/compare.py", "slice_groups"): "slice masks",
    ("training/metrics.py", "bootstrap"): "paired bootstrap with the slices",
    ("review/compare.py", "latency_ms"): "latency budget (both models)",
    ("review/integrity.py", "measure"): "split integrity",
    ("modelops/io.py", "write_parquet"): "scores written",
    ("modelops/vcs.py", "changed_files"): "changed files (git)",
}
BOOTSTRAP_TIMING = """
import json, time
import pandas as pd
from modelops.config import load_settings
from modelops.review.compare import slice_groups
from modelops.training.evaluate import make_holdout, scored
from modelops.training.metrics import bootstrap

settings = load_settings("params.yaml")
ev, boot = settings.evaluation, settings.evaluation.bootstrap
frame = pd.read_parquet("data/holdout.parquet")
scores = pd.read_parquet("reports/pr/scores.parquet")
assert len(scores) == len(frame)
holdout = make_holdout(frame, settings.data_schema, ev)
groups = slice_groups(frame, settings)
both = {k: scored(scores[k].to_numpy(float), ev) for k in ("challenger", "champion")}
cases = {
    "2 models, slices (as make gates)": (both, groups, boot.n_resamples),
    "2 models, no slices": (both, None, boot.n_resamples),
    "champion only, slices": ({"champion": both["champion"]}, groups, boot.n_resamples),
    "2 models, slices, 500 resamples": (both, groups, 500),
}
out = {}
for label, (models, slices, n) in cases.items():
    started = time.perf_counter()
    bootstrap(holdout, models, n_resamples=n, confidence=boot.confidence, seed=boot.seed,
              slices=slices)
    out[label] = round(time.perf_counter() - started, 2)
print("BOOTSTRAP_JSON", json.dumps(out))
"""


def import_times(stderr: str, top: int = 8) -> dict[str, Any]:
    """From ``python -X importtime``'s output: the total (top-level imports, cumulative)
    and the heaviest packages (each package's own entry, cumulative: what importing it
    cost at the point it was first imported; nested packages overlap)."""
    total, packages = 0.0, []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        seconds = int(cumulative) / 1e6
        if not name.startswith("  "):  # one space: a top-level import
            total += seconds
        module = name.strip()
        if "." not in module and not module.startswith(("_", "modelops")):
            packages.append((module, seconds))
    packages.sort(key=lambda r: -r[1])
    return {
        "total_s": round(total, 2),
        "top": {name: round(s, 2) for name, s in packages[:top]},
    }


def profile_gates(clone: Path, env: dict[str, str]) -> dict[str, Any]:
    """Where `modelops gates` spends its time in the warm clone (run three more times:
    plain, under cProfile, with -X importtime), and the bootstrap's share of it."""
    python = str(clone / ".venv" / "bin" / "python")
    started = time.perf_counter()
    run(clone, python, "-m", "modelops.cli", "gates", env=env, check=False)
    wall = time.perf_counter() - started
    prof = clone / "gates.prof"
    run(clone, python, "-m", "cProfile", "-o", str(prof), "-m", "modelops.cli", "gates",
        env=env, check=False)  # fmt: skip
    stats = pstats.Stats(str(prof)).stats  # type: ignore[attr-defined]
    functions: dict[str, float] = {}
    for (path, function), label in PROFILED.items():
        functions[label] = round(
            sum(v[3] for k, v in stats.items() if k[0].endswith(path) and k[2] == function), 2
        )
    imports = import_times(
        run(clone, python, "-X", "importtime", "-m", "modelops.cli", "gates", env=env, check=False)
    )
    printed = run(clone, python, "-c", BOOTSTRAP_TIMING, env=env).splitlines()
    bootstrap = json.loads(
        next(x for x in printed if x.startswith("BOOTSTRAP_JSON")).split(" ", 1)[1]
    )
    return {"wall_s": round(wall, 1), "functions_s": functions, "imports": imports,
            "bootstrap_s": bootstrap}  # fmt: skip


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
    if "gates_profile" in results:
        lines += profile_markdown(results["gates_profile"])
    return "\n".join(lines)


def profile_markdown(p: dict[str, Any]) -> list[str]:
    """The `make gates` profile section."""
    f = p["functions_s"]
    total = f["run_gates: everything after the imports"]
    boot = p["bootstrap_s"]
    with_slices = boot["2 models, slices (as make gates)"]
    without = boot["2 models, no slices"]
    return [
        "## Where `make gates` spends its time (warm clone)",
        "",
        f"`python -m modelops.cli gates` in the warm clone, run again: {p['wall_s']} s wall",
        "(the job's `make gates` step above is the same plus make). Under cProfile",
        f"(inclusive times; cProfile's overhead makes run_gates {total} s, so read the",
        "shares):",
        "",
        "| part | seconds | share of run_gates |",
        "|---|---:|---:|",
        *(f"| {label} | {sec} s | {sec / total:.0%} |" for label, sec in f.items()),
        "",
        f"Imports (`python -X importtime`, top-level modules, cumulative): "
        f"{p['imports']['total_s']} s; heaviest package entries (submodules imported "
        "later count apart): "
        + ", ".join(f"{k} {v} s" for k, v in p["imports"]["top"].items())
        + ".",
        "",
        "The paired bootstrap on the same scores (`reports/pr/scores.parquet`), timed alone:",
        f"the slices cost {with_slices - without:.1f} s of its {with_slices} s.",
        "",
        "| bootstrap | seconds |",
        "|---|---:|",
        *(f"| {label} | {seconds} s |" for label, seconds in boot.items()),
        "",
    ]


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
        print("profiling make gates ...", flush=True)
        env = os.environ | {"PATH": f"{UV_DIR}{os.pathsep}{os.environ['PATH']}"}
        profile = profile_gates(parent / "warm", env)
    results = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "scenarios": scenarios,
        "gates_profile": profile,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pr_job.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "pr_job.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
