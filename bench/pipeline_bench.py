"""Pipeline benchmark: cold `dvc repro`, no-op rerun beside bare `dvc status`, a
hyperparameter-only change, and the same pipeline at 1,000,000 transactions with its
peak memory.

Runs in throw-away copies of the repository (the files git tracks), never in the work
tree. Writes bench/results/pipeline.json and bench/results/pipeline.md.

    make bench            # or: .venv/bin/python bench/pipeline_bench.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
ENV = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
SCENARIOS = {
    "default": {},  # params.yaml as committed: 16 weeks x 30,000 transactions
    "1M": {"simulator": {"transactions_per_week": 62_500}},  # 16 weeks x 62,500
}


def timed(root: Path, *args: str) -> dict[str, Any]:
    """Run a command; wall time, peak RSS of its whole process tree, stages run."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, cwd=root, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{output}")
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "stages": re.findall(r"Running stage '(\w+)'", output),
        "stage_seconds": {
            k: float(v) for k, v in re.findall(r"\[(\w+)\] done in ([\d.]+) s", output)
        },
    }


def project_copy(parent: Path, name: str, params: dict[str, Any]) -> Path:
    """A git repository with the tracked files of this one, params edited, no data."""
    root = parent / name
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for file in tracked:
        if file not in ("data/raw.dvc", "dvc.lock") and (REPO / file).is_file():
            (root / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / file, root / file)
    settings = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in params.items():
        settings[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"],
    ):
        subprocess.run(["git", *args], cwd=root, check=True)
    return root


def run_scenario(parent: Path, name: str, params: dict[str, Any], full: bool) -> dict[str, Any]:
    root = project_copy(parent, name, params)
    result: dict[str, Any] = {"params": params}
    result["data_get"] = timed(root, "modelops", "data", "get")
    result["cold_repro"] = timed(root, "dvc", "repro")
    metrics = json.loads((root / "metrics" / "metrics.json").read_text())
    result["rows"] = json.loads((root / "metrics" / "data.json").read_text())["rows"]
    result["holdout"], result["roc_auc"] = metrics["holdout"], metrics["roc_auc"]
    if full:
        result["noop_repro"] = timed(root, "dvc", "repro")
        result["dvc_status"] = timed(root, "dvc", "status")
        text = (root / "params.yaml").read_text()
        (root / "params.yaml").write_text(
            text.replace("learning_rate: 0.05", "learning_rate: 0.06", 1)
        )
        result["hyperparameter_change"] = timed(root, "dvc", "repro")
    shutil.rmtree(root)
    return result


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024**2, 1),
        "python": platform.python_version(),
        "date": dt.date.today().isoformat(),
    }


def report(results: dict[str, Any]) -> str:
    d, m = results["scenarios"]["default"], results["scenarios"]["1M"]
    mach = results["machine"]

    def line(label: str, r: dict[str, Any], target: str) -> str:
        stages = ", ".join(r["stages"]) or "none"
        return f"| {label} | {r['seconds']:.1f} s | {r['peak_rss_mb']:,} MB | {stages} | {target} |"

    stage_rows = "\n".join(
        f"| {stage} | {d['cold_repro']['stage_seconds'].get(stage, 0):.1f} s | "
        f"{m['cold_repro']['stage_seconds'].get(stage, 0):.1f} s |"
        for stage in ("validate", "split", "train", "baselines", "evaluate")
    )
    overhead = d["noop_repro"]["seconds"] - d["dvc_status"]["seconds"]
    return f"""# Pipeline benchmark

Command: `{results["command"]}` ({mach["date"]}).
Machine: {mach["cpu"]}, {mach["cores"]} cores, {mach["memory_gb"]} GB RAM, Python {mach["python"]}.
Each scenario runs in a fresh copy of the repository (tracked files only, empty DVC cache).
Peak memory is the largest resident set of the command's process tree.

| step | wall time | peak memory | stages run | target |
|---|---:|---:|---|---|
{line(f"default: data get ({d['rows']:,} rows, simulated)", d["data_get"], "-")}
{line("default: cold `dvc repro`", d["cold_repro"], "< 60 s")}
{line("default: no-op `dvc repro`", d["noop_repro"], "< 3 s")}
{line("default: bare `dvc status` (reference)", d["dvc_status"], "-")}
{line("default: `learning_rate` change", d["hyperparameter_change"], "train, evaluate")}
{line(f"1M: data get ({m['rows']:,} rows, simulated)", m["data_get"], "-")}
{line("1M: cold `dvc repro`", m["cold_repro"], "< 300 s, < 4,096 MB")}

The no-op rerun takes {overhead:.1f} s longer than bare `dvc status`; that difference is
the project's own overhead on a run where nothing changed.

Default holdout: {d["holdout"]["rows"]:,} rows, {d["holdout"]["positives"]:,} fraud cases;
ROC-AUC {d["roc_auc"]["value"]:.4f} [{d["roc_auc"]["ci_low"]:.4f}, {d["roc_auc"]["ci_high"]:.4f}].
1M holdout: {m["holdout"]["rows"]:,} rows, {m["holdout"]["positives"]:,} fraud cases;
ROC-AUC {m["roc_auc"]["value"]:.4f} [{m["roc_auc"]["ci_low"]:.4f}, {m["roc_auc"]["ci_high"]:.4f}].

Time inside each stage (from the stage's own log; the rest of a cold run is Python and
library start-up, about 2 to 4 s per stage here, and DVC hashing and caching):

| stage | default | 1M |
|---|---:|---:|
{stage_rows}
"""


def main() -> None:
    results: dict[str, Any] = {
        "command": "make bench",
        "machine": machine(),
        "scenarios": {},
    }
    with tempfile.TemporaryDirectory(prefix="modelops-bench-") as tmp:
        for name, params in SCENARIOS.items():
            print(f"[bench] scenario {name}", file=sys.stderr, flush=True)
            results["scenarios"][name] = run_scenario(
                Path(tmp), name, params, full=name == "default"
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "pipeline.md").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
