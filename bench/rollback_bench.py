"""Rollback under steady load, on 127.0.0.1: the time from `modelops rollback` (the one
command an on-call engineer runs) to the previous version answering all traffic, and the
requests that failed meanwhile (must be 0).

Setup, in a temporary git repository: the pipeline's model (models/) and a quicker
refit registered as v0.1.0 and v0.2.0 (their verdicts written here: the gates are not
what is measured), `make deploy ENV=production` serving v0.2.0 after v0.1.0. Then, each
round: 8 clients send /predict without pause; `modelops rollback --env production` runs
as a subprocess; the service applies the restored file by itself (it re-reads it every
serving.reload_interval_s). Between rounds the rollback is undone (`git revert`).

Run: `make bench-rollback` (about 2 minutes; needs `make repro`'s model and data). Writes
bench/results/rollback.json and rollback.md. Run it alone on the machine.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="bentoml-rollback-")  # not the project's
os.environ["OMP_NUM_THREADS"] = "1"
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))  # the tests' lineage helper

import httpx  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from tests.serving.support import minimal_lineage  # noqa: E402

from modelops import paths  # noqa: E402
from modelops.config import load_settings  # noqa: E402
from modelops.io import dump_model, load_model  # noqa: E402
from modelops.release import deploy, promote, registry  # noqa: E402
from modelops.serving import store  # noqa: E402
from modelops.serving.contract import ApiNames, requests_from_frame  # noqa: E402
from modelops.training.scoring import score  # noqa: E402
from modelops.training.train import build_model, fit  # noqa: E402
from pipeline_bench import machine  # noqa: E402

RESULTS = REPO / "bench/results"
ROUNDS = 5
CLIENTS = 8
GIT_ENV = os.environ | {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
}  # fmt: skip


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=root, env=GIT_ENV, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def project(folder: Path) -> Path:
    """A repository with params, desired states and the prepared train split."""
    root = folder / "repo"
    (root / "deploy/environments").mkdir(parents=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    name = params["model"]["name"]
    for env in ("local", "staging", "production"):
        (root / f"deploy/environments/{env}.yaml").write_text(f"champion: {name}:latest\n")
    (root / ".gitignore").write_text("reports/\n")
    (root / paths.TRAIN).parent.mkdir(parents=True)
    (root / paths.TRAIN).write_bytes((REPO / paths.TRAIN).read_bytes())
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "template")
    return root


def release(root: Path, settings: Any, model: Any, holdout: pd.DataFrame) -> str:
    """Commit ``model`` with its lineage, write its passing verdict, register and store it."""
    path = dump_model(model, root / paths.MODEL)
    lineage = minimal_lineage(settings, path, score(model, holdout, settings.data_schema))
    (root / paths.LINEAGE).write_text(json.dumps(lineage))
    git(root, "add", "-A")
    git(root, "commit", "-qm", f"model {lineage['model_id']}")
    (root / paths.VERDICT).parent.mkdir(parents=True, exist_ok=True)
    verdict = {"verdict": "PASS", "failed": [], "model_id": lineage["model_id"]}
    (root / paths.VERDICT).write_text(json.dumps(verdict))
    version = registry.register(root, settings.model.name)
    store.save_current(settings, root, version=version.version)
    return version.model_tag


def load(url: str, bodies: list[dict], stop: threading.Event, seen: list) -> None:
    """One client: /predict without pause; (time, status, version) per answer."""
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(10**7):
            if stop.is_set():
                return
            try:
                answer = client.post("/predict", json=bodies[i % len(bodies)])
                version = answer.json().get("model_version") if answer.status_code == 200 else None
                seen.append((time.perf_counter(), answer.status_code, version))
            except httpx.HTTPError:
                seen.append((time.perf_counter(), 0, None))


def one_round(root: Path, url: str, bodies: list[dict], old: str, new: str) -> dict[str, Any]:
    """Roll production back from ``new`` to ``old`` under load; undo it afterwards."""
    stop = threading.Event()
    seen: list[tuple[float, int, str | None]] = []
    clients = [
        threading.Thread(target=load, args=(url, bodies, stop, seen)) for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    time.sleep(2.0)  # steady state
    start = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).parent / "modelops"), "rollback", "--env", "production"],
        cwd=root, env=GIT_ENV, capture_output=True, check=True,
    )  # fmt: skip
    command_s = time.perf_counter() - start
    time.sleep(4.0)  # well past the reload interval
    stop.set()
    for client in clients:
        client.join()
    after = [(t, s, v) for t, s, v in seen if t >= start]
    last_new = max((t for t, _, v in after if v == new), default=start)
    git(root, "revert", "--no-edit", "HEAD")  # roll forward again for the next round
    time.sleep(2.0)
    return {
        "command_s": round(command_s, 3),
        "all_traffic_on_previous_s": round(last_new - start, 3),
        "failed_requests": len([1 for _, status, _ in seen if status != 200]),
        "requests": len(seen),
        "answered_by_previous_after": len([1 for t, _, v in after if v == old and t > last_new]),
    }


def main() -> None:
    settings = load_settings(REPO / "params.yaml")
    holdout = pd.read_parquet(REPO / paths.HOLDOUT)
    train = pd.read_parquet(REPO / paths.TRAIN)
    first = load_model(REPO / paths.MODEL)
    quick = settings.model.model_copy(update={"params": {**settings.model.params, "max_iter": 30}})
    second = fit(build_model(settings.data_schema, quick), train, settings.data_schema)
    with tempfile.TemporaryDirectory(prefix="rollback-") as folder:
        root = project(Path(folder))
        settings = load_settings(root / "params.yaml")
        old, new = release(root, settings, first, holdout), release(root, settings, second, holdout)
        os.chdir(root)  # the CLI and the service read params.yaml from here
        for stage in ("staging", "production"):
            for version in ("v0.1.0", "v0.2.0"):
                change = promote.promote(root, settings, stage, version, "full")
                git(root, "merge", "-q", "--ff-only", change.branch)
                outcome = deploy.deploy(root, settings, stage)
        names = ApiNames.from_words(settings.words)
        bodies = [
            {names.record: r} for r in requests_from_frame(holdout.head(200), settings.data_schema)
        ]
        try:
            rounds = [one_round(root, outcome.url, bodies, old, new) for _ in range(ROUNDS)]
        finally:
            deploy.stop(root, "staging")
            deploy.stop(root, "production")
    write(rounds, settings.serving.reload_interval_s)


def write(rounds: list[dict[str, Any]], reload_s: float) -> None:
    traffic = [r["all_traffic_on_previous_s"] for r in rounds]
    summary = {
        "machine": machine(),
        "clients": CLIENTS,
        "reload_interval_s": reload_s,
        "rounds": rounds,
        "median_s": statistics.median(traffic),
        "max_s": max(traffic),
        "failed_requests": sum(r["failed_requests"] for r in rounds),
    }
    where = summary["machine"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rollback.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# Rollback under load",
        "",
        f"`bench/rollback_bench.py` on {where['cpu']}, {where['cores']} cores, {where['date']}: "
        f"{CLIENTS} clients sending /predict "
        f"without pause to `make deploy ENV=production`'s service on 127.0.0.1; each round runs "
        f"`modelops rollback --env production` (serving.reload_interval_s = {reload_s} s).",
        "",
        "| round | command s | all traffic on the previous version after s | failed | requests |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {i} | {r['command_s']} | {r['all_traffic_on_previous_s']} | "
            f"{r['failed_requests']} | {r['requests']} |"
            for i, r in enumerate(rounds, 1)
        ),
        "",
        f"Median {summary['median_s']} s, at most {summary['max_s']} s from the command to the "
        f"previous version answering every request; {summary['failed_requests']} failed requests.",
    ]
    (RESULTS / "rollback.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
