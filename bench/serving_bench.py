"""Serving benchmark, side by side in one run: throughput and p50/p99 latency at
concurrency 1, 16 and 64 (wrk on 127.0.0.1) for

- in-process predict of the same Pipeline (the limit; no HTTP),
- a minimal FastAPI + uvicorn server, sync (`def`) and async (`async def`),
- plain BentoML adaptive batching of the same Pipeline,
- our service: validation, routing, reason codes and the prediction log (SQLite) on.

Every server gets one worker (ours also runs with two, one per core) and
OMP_NUM_THREADS=1. Needs `make bento`'s model (the
pipeline's models/) and Debian's wrk. Run: `make bench-serving` (about 4 minutes);
writes bench/results/serving.json and serving.md (`--report-only` rewrites the .md from
the .json). Run it alone: client and servers
share the machine's cores.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
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


def lua_script(folder: Path, bodies: list[str], path: str) -> Path:
    """A wrk script that cycles through request bodies."""
    items = ",\n".join(f"[==[{b}]==]" for b in bodies)
    script = folder / f"{path.strip('/')}.lua"
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


def wait_answering(url: str, path: str, body: str, process: subprocess.Popen[bytes]) -> None:
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


def server_commands(
    folder: Path, tag: str, port: int
) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """name -> (command, extra environment, predict path)."""
    host = ["--host", "127.0.0.1", "--port", str(port)]
    state = folder / "state.yaml"
    state.write_text(yaml.safe_dump({"champion": tag, "automation": "partial"}))
    uvicorn = [sys.executable, "-m", "uvicorn", "--app-dir", str(REPO / "bench"), "--workers", "1",
               "--no-access-log", "--log-level", "warning", *host]  # fmt: skip
    return {
        "fastapi_sync": (
            [*uvicorn, "serving_apps:fastapi_sync"],
            {"BENCH_APP": "fastapi_sync"},
            "/predict",
        ),
        "fastapi_async": (
            [*uvicorn, "serving_apps:fastapi_async"],
            {"BENCH_APP": "fastapi_async"},
            "/predict",
        ),
        "bentoml_plain_batching": (
            [
                "bentoml",
                "serve",
                "serving_apps:PlainBatching",
                "--working-dir",
                str(REPO / "bench"),
                *host,
            ],
            {},
            "/predict",
        ),
        **{
            name: (
                ["bentoml", "serve", "modelops.serving.service:ModelService", *host],
                {
                    "MODELOPS_PARAMS": str(params_with_workers(folder, workers)),
                    "MODELOPS_DESIRED_STATE": str(state),
                    "MODELOPS_LOG_URL": f"sqlite:///{folder / f'{name}.db'}",
                },
                "/predict",
            )
            for name, workers in (("ours", 1), ("ours_2_workers", 2))
        },
    }


def params_with_workers(folder: Path, workers: int) -> Path:
    """params.yaml with serving.workers set."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["serving"]["workers"] = workers
    path = folder / f"params-{workers}.yaml"
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


def servers(folder: Path, tag: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    for name, (command, extra, path) in server_commands(folder, tag, port).items():
        bodies = [body_for(name, r) for r in records]
        script = lua_script(folder, bodies, path)
        env = os.environ | {"BENCH_MODEL": str(REPO / paths.MODEL), "OMP_NUM_THREADS": "1"} | extra
        log = (folder / f"{name}.log").open("wb")
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_answering(url, path, bodies[0], process)
            wrk(url, script, 16, WARMUP_S)
            results[name] = {}
            for c in CONCURRENCY:
                start = cpu_seconds(process.pid)
                run = wrk(url, script, c, DURATION_S)
                run["server_cpu_share"] = round((cpu_seconds(process.pid) - start) / DURATION_S, 2)
                if name.startswith("ours"):
                    run["mean_batch_rows_so_far"] = batch_rows(url)
                results[name][f"c{c}"] = run
                print(name, c, run, flush=True)
        finally:
            process.terminate()
            process.wait(timeout=60)
            log.close()
        statuses = re.findall(r"status=(\d+)", (folder / f"{name}.log").read_text())
        if statuses:  # BentoML's access log (ours has it off)
            results[name]["access_log_statuses"] = dict(Counter(statuses))
    return results


def report(results: dict[str, Any]) -> str:
    """The committed markdown table and target checks."""
    s, inproc = results["servers"], results["in_process"]
    lines = [
        "# Serving benchmark",
        "",
        f"`bench/serving_bench.py` on {results['machine']['cpu']}, "
        f"{results['machine']['cores']} cores, "
        f"{results['machine']['date']}. Model: the pipeline's default ({results['model']}), "
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
    targets = results["targets"]
    lines += ["", "## Targets", "", *(f"- {k}: {v}" for k, v in targets.items()), ""]
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> dict[str, str]:
    s, inproc = results["servers"], results["in_process"]
    ours = s["ours"]
    fastapi = max(s["fastapi_sync"]["c64"]["ok_per_s"], s["fastapi_async"]["c64"]["ok_per_s"])
    plain = s["bentoml_plain_batching"]["c64"]["ok_per_s"]
    c64 = ours["c64"]["ok_per_s"]
    pipeline_p50 = inproc["pipeline_one_row"]["p50_ms"]
    fast_p50 = inproc["fast_path_with_reasons_one_row"]["p50_ms"]
    c1 = ours["c1"]["p50_ms"]
    two = s["ours_2_workers"]
    return {
        "c64 throughput vs best minimal FastAPI (target >= 3x)": (
            f"{c64 / fastapi:.2f}x ({c64:,.0f} vs {fastapi:,.0f} answered/s)"
        ),
        "c64 throughput vs plain BentoML batching (target >= 1x)": (
            f"{c64 / max(plain, 0.1):.2f}x ({c64:,.0f} vs {plain:,.0f} answered/s)"
        ),
        "c1 p50 minus in-process Pipeline p50 (target <= 1 ms)": (
            f"{c1 - pipeline_p50:+.2f} ms ({c1} vs {pipeline_p50} ms)"
        ),
        "c1 p50 minus in-process fast path with reasons p50": (
            f"{c1 - fast_p50:+.2f} ms ({c1} vs {fast_p50} ms)"
        ),
        "c16 p99 (target < 50 ms)": (
            f"{ours['c16']['p99_ms']} ms with 1 worker, {two['c16']['p99_ms']} ms with 2"
        ),
        "c64 throughput with 2 workers": f"{two['c64']['ok_per_s']:,.0f} answered/s",
    }


def main() -> None:
    if "--report-only" in sys.argv:  # rewrite serving.md from the committed serving.json
        (RESULTS / "serving.md").write_text(
            report(json.loads((RESULTS / "serving.json").read_text()))
        )
        return
    settings = load_settings(REPO / "params.yaml")
    tag = save_current(settings, REPO)
    holdout = pd.read_parquet(REPO / paths.HOLDOUT)
    records = requests_from_frame(holdout.head(BODIES), settings.data_schema)
    results: dict[str, Any] = {"machine": machine(), "model": tag}
    results["in_process"] = in_process(settings, tag, holdout)
    print(results["in_process"], flush=True)
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        results["servers"] = servers(Path(tmp), tag, records)
    results["targets"] = targets(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serving.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "serving.md").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
