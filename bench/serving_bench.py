"""Serving benchmark, side by side in one run: throughput and p50/p99 latency at
concurrency 1, 16 and 64 (wrk on 127.0.0.1) for

- in-process predict of the same Pipeline (the limit; no HTTP),
- a minimal FastAPI + uvicorn server, sync (`def`) and async (`async def`),
- plain BentoML adaptive batching of the same Pipeline,
- our service: validation, routing, reason codes and the prediction log (SQLite) on,
  as the current code (`ours`, also with two workers) and as the code of a base revision
  (`ours_before`, `--before REV`, default 7a6ba07: the commit before the hardening of
  issue 13), with the same model, desired state and wrk settings.

`ours_before` runs from a `git archive` of REV (its src/ first on PYTHONPATH, its own
params.yaml) and is checked to be the old code: the current code answers an invalid
record with application/problem+json, the old one does not. The two run side by side
and are measured alternately, at each concurrency level, over ROUNDS rounds whose order
flips each round, so that a drift of the machine shows up in both; the report gives
every round and the median.

Every server gets one worker (ours also runs with two, one per core) and
OMP_NUM_THREADS=1. Needs `make bento`'s model (the pipeline's models/) and Debian's wrk.
Run: `make bench-serving` (about 6 minutes; `BEFORE=<rev>` another base, `BEFORE=` none);
writes bench/results/serving.json and serving.md (`--report-only` rewrites the .md from
the .json). Run it alone: client and servers share the machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("BENTOML_HOME", str(REPO / ".bentoml"))
os.environ["OMP_NUM_THREADS"] = "1"
sys.path.insert(0, str(REPO / "bench"))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402
import yaml  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from modelops import paths  # noqa: E402
from modelops.config import load_settings  # noqa: E402
from modelops.io import load_model  # noqa: E402
from modelops.serving.bento import free_port  # noqa: E402
from modelops.serving.contract import ApiNames, requests_from_frame  # noqa: E402
from modelops.serving.store import load_version, save_current  # noqa: E402
from pipeline_bench import machine  # noqa: E402

RESULTS = REPO / "bench/results"
CONCURRENCY = (1, 16, 64)
DURATION_S = 10
WARMUP_S = 3
BODIES = 100
BEFORE = "7a6ba07"  # the commit before the serving hardening (issue 13)
ROUNDS = 3  # alternating before/after measurements per concurrency level
PAIR = ("ours_before", "ours")
PROBLEM_JSON = "application/problem+json"


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p99 in ms of per-call seconds."""
    ms = np.array(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def timed_calls(call: Any, n: int) -> list[float]:
    call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def in_process(settings: Any, tag: str, holdout: pd.DataFrame) -> dict[str, Any]:
    """One-row predict in this process, one thread: the generic Pipeline (a DataFrame
    row, as evaluation calls it), our fast path, and our fast path with reason codes."""
    schema = settings.data_schema
    model = load_model(REPO / paths.MODEL)
    version = load_version(tag, schema)
    rows = holdout.head(200)
    records = requests_from_frame(rows, schema)
    frames = [rows.iloc[[i]][list(model.feature_names_in_)] for i in range(len(rows))]
    top = settings.serving.reason_codes
    out: dict[str, Any] = {}
    with threadpool_limits(1):
        cases = {
            "pipeline_one_row": lambda i: model.predict_proba(frames[i % 200]),
            "fast_path_one_row": lambda i: version.scorer.score([records[i % 200]]),
            "fast_path_with_reasons_one_row": lambda i: version.scorer.score_and_explain(
                [records[i % 200]], top
            ),
            "fast_path_with_reasons_64_rows": lambda i: version.scorer.score_and_explain(
                records[(i % 3) * 64 : (i % 3) * 64 + 64], top
            ),
        }
        for name, call in cases.items():
            counter = iter(range(10**9))
            samples = timed_calls(lambda c=call, k=counter: c(next(k)), 300)
            out[name] = percentiles(samples) | {
                "rows_per_s": round(
                    (64 if name.endswith("64_rows") else 1) / float(np.mean(samples)), 1
                )
            }
    return out


def lua_script(folder: Path, name: str, bodies: list[str], path: str) -> Path:
    """A wrk script for server ``name`` that cycles through request bodies."""
    items = ",\n".join(f"[==[{b}]==]" for b in bodies)
    script = folder / f"{name}.lua"
    script.write_text(
        f"local bodies = {{\n{items}\n}}\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n"
        f'  local headers = {{["Content-Type"] = "application/json"}}\n'
        f'  return wrk.format("POST", "{path}", headers, bodies[i])\n'
        "end\n"
    )
    return script


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(text: str) -> dict[str, Any]:
    """Requests/s, p50/p99 (ms) and errors from `wrk --latency` output."""

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()  # type: ignore[union-attr]
        return round(float(value) * UNITS[unit], 3)

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),  # type: ignore[union-attr]
        "p50_ms": latency("50%"),
        "p99_ms": latency("99%"),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(g) for g in socket.groups()) if socket else 0),
    }


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children so far."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def wrk(url: str, script: Path, connections: int, seconds: int) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        ["wrk", "--latency", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
         "-s", str(script), url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = parse_wrk(done.stdout)
    ok = result["requests"] - result["errors"]
    result["ok_per_s"] = round(result["requests_per_s"] * ok / max(result["requests"], 1), 1)
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result | {"wrk_cpu_share": round(wrk_cpu / seconds, 2)}


@dataclass(frozen=True)
class Server:
    """How to start one server of the benchmark (host and port are added at start)."""

    command: list[str]
    env: dict[str, str]
    cwd: Path = REPO
    path: str = "/predict"


def wait_answering(url: str, path: str, body: str, process: subprocess.Popen[bytes]) -> None:
    """Wait until ``url`` answers ``body`` at ``path`` with 200."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            answer = httpx.post(
                url + path, content=body, headers={"content-type": "application/json"}
            )
            if answer.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer")


def git(*args: str) -> str:
    """The output of a git command in the repository."""
    done = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def checkout(rev: str, folder: Path) -> tuple[Path, dict[str, str]]:
    """The tree of git revision ``rev`` extracted into ``folder`` (git archive: no
    worktree to clean up), and what it is: rev, commit, subject."""
    try:
        commit = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(
            f"--before {rev}: no such commit here (a repository made from the template has "
            "none of its history); `make bench-serving BEFORE=` measures the current code only"
        ) from None
    tree = folder / f"before-{commit[:12]}"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree, {"rev": rev, "commit": commit, "subject": git("log", "-1", "--format=%s", commit)}


def server_specs(folder: Path, tag: str, before: Path | None) -> dict[str, Server]:
    """Every server of the run by name, in the order of the report; ``before``: the tree
    of the base revision (None: no ours_before)."""
    state = folder / "state.yaml"
    state.write_text(yaml.safe_dump({"champion": tag, "automation": "partial"}))
    uvicorn = [sys.executable, "-m", "uvicorn", "--app-dir", str(REPO / "bench"), "--workers", "1",
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
    plain = ["bentoml", "serve", "serving_apps:PlainBatching", "--working-dir", str(REPO / "bench")]
    specs = {
        "fastapi_sync": Server(
            [*uvicorn, "serving_apps:fastapi_sync"], {"BENCH_APP": "fastapi_sync"}
        ),
        "fastapi_async": Server(
            [*uvicorn, "serving_apps:fastapi_async"], {"BENCH_APP": "fastapi_async"}
        ),
        "bentoml_plain_batching": Server(plain, {}),
    }
    if before is not None:
        specs["ours_before"] = ours(folder, "ours_before", state, before, workers=1)
    specs["ours"] = ours(folder, "ours", state, REPO, workers=1)
    specs["ours_2_workers"] = ours(folder, "ours_2_workers", state, REPO, workers=2)
    return specs


def ours(folder: Path, name: str, state: Path, root: Path, workers: int) -> Server:
    """Our service from the code and params.yaml under ``root``: the repository, or a base
    revision's tree, whose src/ then comes first on PYTHONPATH so that its modules are the
    ones imported (the project's own install is an editable path after it)."""
    env = {
        "MODELOPS_PARAMS": str(params_with_workers(folder, name, root / "params.yaml", workers)),
        "MODELOPS_DESIRED_STATE": str(state),
        "MODELOPS_LOG_URL": f"sqlite:///{folder / f'{name}.db'}",
    }
    if root != REPO:
        env["PYTHONPATH"] = str(root / "src")
    return Server(["bentoml", "serve", "modelops.serving.service:ModelService"], env, cwd=root)


def params_with_workers(folder: Path, name: str, source: Path, workers: int) -> Path:
    """A copy of params.yaml ``source`` with serving.workers set."""
    params = yaml.safe_load(source.read_text())
    params["serving"]["workers"] = workers
    path = folder / f"params-{name}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def body_for(name: str, record: dict[str, Any]) -> str:
    """The request body each server expects (ours: the envelope named by params.yaml words)."""
    if name == "bentoml_plain_batching":
        return json.dumps({"records": [record]})
    if name.startswith("fastapi"):
        return json.dumps({"record": record})
    return json.dumps(
        {ApiNames.from_words(load_settings(REPO / "params.yaml").words).record: record}
    )


def batch_rows(url: str) -> float | None:
    """Mean rows per model call of our batcher, from /metrics."""
    text = httpx.get(url + "/metrics").text
    total = re.search(r"^modelops_batch_rows_sum ([\d.e+]+)$", text, re.M)
    count = re.search(r"^modelops_batch_rows_count ([\d.e+]+)$", text, re.M)
    if not (total and count and float(count.group(1))):
        return None
    return round(float(total.group(1)) / float(count.group(1)), 1)


def error_content_type(url: str) -> str:
    """The media type of the answer to a record that breaks the contract: the hardened
    service answers application/problem+json (edge.py), the code before it did not."""
    answer = httpx.post(url + "/predict", json={"not_a_field": 1})
    if answer.status_code < 400:
        raise RuntimeError(f"{url} accepted an invalid request ({answer.status_code})")
    return str(answer.headers.get("content-type", "")).split(";")[0]


@contextmanager
def serving(
    name: str, server: Server, folder: Path, body: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start ``server`` on a free port of 127.0.0.1, output to <folder>/<name>.log; yield
    its URL and process once it answers ``body``; stop it at exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | {"BENCH_MODEL": str(REPO / paths.MODEL), "OMP_NUM_THREADS": "1"} | server.env
    command = [*server.command, "--host", "127.0.0.1", "--port", str(port)]
    with (folder / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=server.cwd, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_answering(url, server.path, body, process)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=60)


def measure(
    name: str, url: str, script: Path, process: subprocess.Popen[bytes], connections: int
) -> dict[str, Any]:
    """One wrk run, with the server's CPU over it (ours: also the mean batch so far)."""
    start = cpu_seconds(process.pid)
    run = wrk(url, script, connections, DURATION_S)
    run["server_cpu_share"] = round((cpu_seconds(process.pid) - start) / DURATION_S, 2)
    if name.startswith("ours"):
        run["mean_batch_rows_so_far"] = batch_rows(url)
    print(name, connections, run, flush=True)
    return run


def solo(name: str, server: Server, folder: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    """A server alone: a warm-up, then each concurrency level once."""
    bodies = [body_for(name, r) for r in records]
    script = lua_script(folder, name, bodies, server.path)
    with serving(name, server, folder, bodies[0]) as (url, process):
        wrk(url, script, 16, WARMUP_S)
        results = {f"c{c}": measure(name, url, script, process, c) for c in CONCURRENCY}
    statuses = re.findall(r"status=(\d+)", (folder / f"{name}.log").read_text())
    if statuses:  # BentoML's access log (ours has it off)
        results["access_log_statuses"] = dict(Counter(statuses))
    return results


def alternating(
    pair: dict[str, Server], folder: Path, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """ours_before and ours side by side: both started, checked to be the code they claim
    (error_content_type) and warmed up; then, ROUNDS times, each concurrency level is
    measured on one and then the other, the order flipping each round. Each level's
    figures are the median over the rounds; every round is kept under "rounds"."""
    bodies = [body_for("ours", r) for r in records]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {f"c{c}": [] for c in CONCURRENCY} for name in pair
    }
    with (
        serving("ours_before", pair["ours_before"], folder, bodies[0]) as before,
        serving("ours", pair["ours"], folder, bodies[0]) as after,
    ):
        live = {"ours_before": before, "ours": after}
        shapes = {name: error_content_type(url) for name, (url, _) in live.items()}
        check_versions(shapes)
        scripts = {name: lua_script(folder, name, bodies, "/predict") for name in live}
        for name, (url, _) in live.items():
            wrk(url, scripts[name], 16, WARMUP_S)
        for round_ in range(1, ROUNDS + 1):
            order = list(PAIR) if round_ % 2 else list(reversed(PAIR))
            for c in CONCURRENCY:
                for position, name in enumerate(order, 1):
                    url, process = live[name]
                    run = measure(name, url, scripts[name], process, c)
                    runs[name][f"c{c}"].append(run | {"round": round_, "position": position})
    return {
        name: {level: median_run(r) | {"rounds": r} for level, r in levels.items()}
        | {"error_content_type": shapes[name]}
        for name, levels in runs.items()
    }


def check_versions(shapes: dict[str, str]) -> None:
    """ours must answer errors as problem+json and ours_before must not; otherwise the
    before server imported the current code (or the current code lost its edge)."""
    if shapes["ours"] != PROBLEM_JSON or shapes["ours_before"] == PROBLEM_JSON:
        raise RuntimeError(
            f"error media types {shapes}: ours_before is not the code of the base revision"
        )


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds; errors summed, so none hides."""
    keys = [
        k
        for k, v in runs[0].items()
        if isinstance(v, int | float) and k not in {"round", "position"}
    ]
    out: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = round(float(statistics.median(values)), 3)
    out["requests"] = sum(r["requests"] for r in runs)
    out["errors"] = sum(r["errors"] for r in runs)
    return out


def servers(
    folder: Path, tag: str, records: list[dict[str, Any]], before: Path | None
) -> dict[str, Any]:
    """Every server in turn: the peers and ours_2_workers alone, ours_before and ours
    alternating (ours alone without a base revision)."""
    specs = server_specs(folder, tag, before)
    results: dict[str, Any] = {}
    for name, server in specs.items():
        if name == "ours_before":
            results |= alternating({n: specs[n] for n in PAIR}, folder, records)
        elif name not in results:
            results[name] = solo(name, server, folder, records)
    return results


def report(results: dict[str, Any]) -> str:
    """The committed markdown: tables, the before/after rounds, target checks."""
    s, inproc, mach = results["servers"], results["in_process"], results["machine"]
    lines = [
        "# Serving benchmark",
        "",
        f"`bench/serving_bench.py` on {mach['cpu']}, {mach['cores']} cores, {mach['date']}. "
        f"Model: the pipeline's default ({results['model']}), "
        f"{DURATION_S} s per level with wrk (1 thread) on 127.0.0.1 after a {WARMUP_S} s warm-up; "
        "one worker (ours_2_workers: two) and OMP_NUM_THREADS=1 for every server.",
        "",
        "## In-process predict, one thread (the limit)",
        "",
        "| call | p50 ms | p99 ms | rows/s |",
        "|---|---:|---:|---:|",
        *(
            f"| {k} | {v['p50_ms']} | {v['p99_ms']} | {v['rows_per_s']:,} |"
            for k, v in inproc.items()
        ),
        "",
        "## HTTP servers",
        "",
        *before_note(results),
        "| server | concurrency | answered/s | p50 ms | p99 ms | errors | server CPU (cores) "
        "| wrk CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, levels in s.items():
        for level, r in levels.items():
            if level not in {f"c{c}" for c in CONCURRENCY}:
                continue
            lines.append(
                f"| {name} | {level[1:]} | {r['ok_per_s']:,.0f} | {r['p50_ms']} "
                f"| {r['p99_ms']} "
                f"| {r['errors']} | {r['server_cpu_share']} | {r['wrk_cpu_share']} |"
            )
    lines += rounds_table(s)
    targets = results["targets"]
    lines += ["", "## Targets", "", *(f"- {k}: {v}" for k, v in targets.items()), ""]
    return "\n".join(lines)


def before_note(results: dict[str, Any]) -> list[str]:
    """What ours_before is, and how it was told apart from ours."""
    before = results.get("before")
    if not before:
        return []
    s = results["servers"]
    return [
        f"ours_before is the service at {before['rev']} ({before['commit'][:12]}, "
        f'"{before["subject"]}"), the commit before the hardening, served from a git '
        "archive of it (its src/ first on PYTHONPATH, its params.yaml), with the same model, "
        "desired state and wrk settings as ours. An invalid record gets "
        f"{s['ours_before']['error_content_type']} from it and "
        f"{s['ours']['error_content_type']} from ours. The two ran side by side; their rows "
        f"are the medians of {before['rounds']} rounds (below), errors summed.",
        "",
    ]


def rounds_table(s: dict[str, Any]) -> list[str]:
    """Each round of the alternating before/after measurements, with its ratios."""
    if "ours_before" not in s:
        return []
    lines = [
        "",
        "## Before and after the hardening, round by round",
        "",
        "Within a round, each level is measured on one server and then on the other; "
        "the order flips each round.",
        "",
        "| concurrency | round | first | before answered/s | after answered/s | after/before "
        "| before p99 ms | after p99 ms | after/before |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in CONCURRENCY:
        pairs = zip(s["ours_before"][f"c{c}"]["rounds"], s["ours"][f"c{c}"]["rounds"], strict=True)
        for b, a in pairs:
            first = "before" if b["position"] == 1 else "after"
            lines.append(
                f"| {c} | {b['round']} | {first} | {b['ok_per_s']:,.0f} | {a['ok_per_s']:,.0f} "
                f"| {a['ok_per_s'] / b['ok_per_s']:.2f} | {b['p99_ms']} | {a['p99_ms']} "
                f"| {a['p99_ms'] / b['p99_ms']:.2f} |"
            )
    return lines


def targets(results: dict[str, Any]) -> dict[str, str]:
    """The targets of the serving issues, for ours and (with a base revision) ours_before."""
    s, inproc = results["servers"], results["in_process"]
    fastapi = max(s["fastapi_sync"]["c64"]["ok_per_s"], s["fastapi_async"]["c64"]["ok_per_s"])
    plain = s["bentoml_plain_batching"]["c64"]["ok_per_s"]
    pipeline_p50 = inproc["pipeline_one_row"]["p50_ms"]
    fast_p50 = inproc["fast_path_with_reasons_one_row"]["p50_ms"]
    has_before = "ours_before" in s
    label = {"ours": "after " if has_before else "", "ours_before": "before "}
    compared = ["ours", "ours_before"] if has_before else ["ours"]

    def each(figure: Any) -> str:
        return "; ".join(label[name] + figure(s[name]) for name in compared)

    def ratio_to(base: float) -> Any:
        return lambda r: (
            f"{r['c64']['ok_per_s'] / max(base, 0.1):.2f}x "
            f"({r['c64']['ok_per_s']:,.0f} vs {base:,.0f} answered/s)"
        )

    two = s["ours_2_workers"]
    found = {
        "c64 throughput vs best minimal FastAPI (target >= 3x)": each(ratio_to(fastapi)),
        "c64 throughput vs plain BentoML batching (target >= 1x)": each(ratio_to(plain)),
        "c1 p50 minus in-process Pipeline p50 (target <= 1 ms)": each(
            lambda r: (
                f"{r['c1']['p50_ms'] - pipeline_p50:+.2f} ms "
                f"({r['c1']['p50_ms']} vs {pipeline_p50} ms)"
            )
        ),
        "c1 p50 minus in-process fast path with reasons p50": each(
            lambda r: (
                f"{r['c1']['p50_ms'] - fast_p50:+.2f} ms ({r['c1']['p50_ms']} vs {fast_p50} ms)"
            )
        ),
        "c16 p99 (target < 50 ms)": each(lambda r: f"{r['c16']['p99_ms']} ms with 1 worker")
        + f"; {two['c16']['p99_ms']} ms with 2 workers",
        "c64 throughput with 2 workers": f"{two['c64']['ok_per_s']:,.0f} answered/s",
    }
    if has_before:
        found["hardening cost"] = hardening_cost(s["ours_before"], s["ours"])
    return found


def hardening_cost(before: dict[str, Any], after: dict[str, Any]) -> str:
    """After/before of the c64 throughput and the c16 p99: the medians' ratio, and each
    round's."""

    def per_round(level: str, key: str) -> str:
        pairs = zip(before[level]["rounds"], after[level]["rounds"], strict=True)
        return ", ".join(f"{a[key] / b[key]:.2f}" for b, a in pairs)

    throughput = after["c64"]["ok_per_s"] / before["c64"]["ok_per_s"]
    p99 = after["c16"]["p99_ms"] / before["c16"]["p99_ms"]
    return (
        f"c64 throughput after/before = {throughput:.2f}, c16 p99 after/before = {p99:.2f} "
        f"(medians of {len(after['c64']['rounds'])} alternating rounds; round by round: "
        f"c64 throughput {per_round('c64', 'ok_per_s')}, c16 p99 {per_round('c16', 'p99_ms')})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--before",
        default=BEFORE,
        help=f"git revision whose service runs as ours_before (default {BEFORE}); '' for none",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite serving.md from serving.json"
    )
    args = parser.parse_args()
    if args.report_only:
        (RESULTS / "serving.md").write_text(
            report(json.loads((RESULTS / "serving.json").read_text()))
        )
        return
    settings = load_settings(REPO / "params.yaml")
    tag = save_current(settings, REPO)
    holdout = pd.read_parquet(REPO / paths.HOLDOUT)
    records = requests_from_frame(holdout.head(BODIES), settings.data_schema)
    results: dict[str, Any] = {"machine": machine(), "model": tag}
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        folder = Path(tmp)
        before = None
        if args.before:
            before, results["before"] = checkout(args.before, folder)
            results["before"]["rounds"] = ROUNDS
        results["in_process"] = in_process(settings, tag, holdout)
        print(results["in_process"], flush=True)
        results["servers"] = servers(folder, tag, records, before)
    results["targets"] = targets(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serving.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "serving.md").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
