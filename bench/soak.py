"""Soak test of the service, bounded and on 127.0.0.1 only: a few minutes of mixed valid
and invalid traffic at concurrency 16, with a desired-state switch halfway.

The current service runs under `bentoml serve` (one worker, as params.yaml says) with its
own BentoML model store, desired state and SQLite prediction log in a temporary folder:
the pipeline's model is the champion, and a smaller model fitted here on a quarter of the
training rows is the challenger. About 80 % of the requests are valid (/predict, and
/predict_batch with 2 to 8 records; holdout records), 20 % invalid, of seven kinds, each
with the status it must get (KINDS). After a warm-up, the traffic runs for `--seconds`;
halfway, the desired state switches from the champion alone to the champion with the
challenger in shadow, and the script waits until /metadata shows it applied.

Recorded, each with its bound:
- the resident memory (RSS) of the server's process tree after the warm-up, every
  SAMPLE_S seconds and at the end: growth at most MEMORY_BOUND_MB (loading the
  challenger included);
- statuses by kind of request: no 5xx, every request the status of its kind, no
  transport error;
- the prediction log against the answers: exactly one row per answered record (by
  request id), and one shadow row per record routed after the switch, none before;
- the server's log lines: client errors at most the edge's rate limit allows
  (LogLimit: a burst, then so many a second), other lines at most OTHER_LINES_BOUND, no
  traceback.

Run: `make bench-soak` (about 4 minutes; SOAK_SECONDS=180); writes bench/results/soak.json
and soak.md. Run it alone: client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import bentoml  # noqa: E402
import httpx  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import yaml  # noqa: E402

from modelops import paths  # noqa: E402
from modelops.config import Settings, load_settings  # noqa: E402
from modelops.io import dump_model, read_json  # noqa: E402
from modelops.schema import ColumnType  # noqa: E402
from modelops.serving import store  # noqa: E402
from modelops.serving.bento import free_port, wait_ready  # noqa: E402
from modelops.serving.contract import ApiNames, requests_from_frame  # noqa: E402
from modelops.serving.problem import LogLimit  # noqa: E402
from modelops.serving.scorer import reference_values  # noqa: E402
from modelops.training.lineage import file_md5  # noqa: E402
from modelops.training.metrics import Scored  # noqa: E402
from modelops.training.scoring import score  # noqa: E402
from modelops.training.train import build_model, fit, load_estimator_class  # noqa: E402
from pipeline_bench import machine  # noqa: E402

RESULTS = REPO / "bench/results"
CONCURRENCY = 16
SECONDS = 180
WARMUP_S = 20
SAMPLE_S = 5
MEMORY_BOUND_MB = 50  # RSS growth of the server's tree from after the warm-up to the end
OTHER_LINES_BOUND = 100  # server log lines that are not client errors: start, switch, stop
RECORDS = 2000  # holdout records the valid requests draw from
SEED = 13


@dataclass(frozen=True)
class Kind:
    """A kind of request: its share of the traffic and the status it must get."""

    name: str
    share: float
    status: int

    @property
    def valid(self) -> bool:
        """Whether it is a valid prediction request."""
        return self.status == 200


KINDS = (
    Kind("predict", 0.70, 200),
    Kind("predict_batch", 0.10, 200),
    Kind("missing_field", 0.03, 400),
    Kind("out_of_range", 0.03, 400),
    Kind("control_characters", 0.03, 400),
    Kind("duplicate_key", 0.03, 400),
    Kind("multipart", 0.03, 415),
    Kind("unknown_path", 0.03, 404),
    Kind("oversized_body", 0.02, 413),
)


@dataclass(frozen=True)
class Request:
    """One HTTP request to send."""

    path: str
    content: bytes
    content_type: str = "application/json"
    records: int = 0  # records a valid request asks to score


class Traffic:
    """Builds the requests of each kind from holdout records, in the API's names."""

    def __init__(self, settings: Settings, records: list[dict[str, Any]]) -> None:
        self.names = ApiNames.from_words(settings.words)
        self.schema = settings.data_schema
        self.records = records
        self.max_body_bytes = settings.serving.max_body_bytes
        self.builders: dict[str, Callable[[random.Random], Request]] = {
            "predict": self.predict,
            "predict_batch": self.predict_batch,
            "missing_field": self.missing_field,
            "out_of_range": self.out_of_range,
            "control_characters": self.control_characters,
            "duplicate_key": self.duplicate_key,
            "multipart": self.multipart,
            "unknown_path": self.unknown_path,
            "oversized_body": self.oversized_body,
        }

    def request(self, kind: str, rng: random.Random) -> Request:
        """A request of ``kind``."""
        return self.builders[kind](rng)

    def _one(self, record: dict[str, Any], path: str = "/predict", records: int = 0) -> Request:
        """``record`` in the /predict envelope; ``records``: 1 if it must be answered."""
        return Request(path, json.dumps({self.names.record: record}).encode(), records=records)

    def predict(self, rng: random.Random) -> Request:
        """One valid record."""
        return self._one(rng.choice(self.records), records=1)

    def predict_batch(self, rng: random.Random) -> Request:
        """Two to eight valid records."""
        batch = rng.sample(self.records, rng.randint(2, 8))
        body = json.dumps({self.names.records: batch}).encode()
        return Request("/predict_batch", body, records=len(batch))

    def missing_field(self, rng: random.Random) -> Request:
        """A record without one of its required (not nullable) features."""
        required = [c for c in self.schema.features if not self.schema.columns[c].nullable]
        record = dict(rng.choice(self.records))
        record.pop(rng.choice(required))
        return self._one(record)

    def out_of_range(self, rng: random.Random) -> Request:
        """A record with a number below its column's minimum."""
        bounded = [c for c in self.schema.features if self.schema.columns[c].min is not None]
        name = rng.choice(bounded)
        minimum = self.schema.columns[name].min
        assert minimum is not None
        record = dict(rng.choice(self.records))
        below = minimum - 1
        record[name] = int(below) if self.schema.columns[name].type == ColumnType.INT else below
        return self._one(record)

    def control_characters(self, rng: random.Random) -> Request:
        """A record whose text field holds a control character."""
        texts = [
            c
            for c in self.schema.columns
            if c != self.schema.target
            and self.schema.columns[c].type in (ColumnType.STRING, ColumnType.CATEGORY)
        ]
        name = rng.choice(texts)
        record = dict(rng.choice(self.records))
        record[name] = f"{record[name] or 'x'}\u0001"
        return self._one(record)

    def duplicate_key(self, rng: random.Random) -> Request:
        """A record in which one key appears twice (valid values both times)."""
        record = rng.choice(self.records)
        key = rng.choice(self.schema.features)
        inner = json.dumps(record)
        text = f'{{"{self.names.record}": {{"{key}": {json.dumps(record[key])}, {inner[1:]}}}'
        return Request("/predict", text.encode())

    def multipart(self, rng: random.Random) -> Request:
        """A valid record sent as a multipart form."""
        record = json.dumps(rng.choice(self.records))
        body = (
            f'--soak\r\nContent-Disposition: form-data; name="{self.names.record}"\r\n\r\n'
            f"{record}\r\n--soak--\r\n"
        )
        return Request("/predict", body.encode(), "multipart/form-data; boundary=soak")

    def unknown_path(self, rng: random.Random) -> Request:
        """A valid record sent to a path the service does not serve."""
        return self._one(rng.choice(self.records), "/predict/v2")

    def oversized_body(self, rng: random.Random) -> Request:
        """A body just over serving.max_body_bytes."""
        padding = "x" * (self.max_body_bytes + rng.randint(1, 1024))
        return Request("/predict", json.dumps({"padding": padding}).encode())


@dataclass
class Tally:
    """What the client saw: statuses by kind, answered request ids, timings."""

    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    transport_errors: Counter[str] = field(default_factory=Counter)
    answered: list[str] = field(default_factory=list)  # request ids of answered records
    refused_valid: int = 0  # records of valid requests that did not get a 200

    def count(self, kind: Kind, request: Request, answer: httpx.Response) -> None:
        """Count one answer; keep the request ids of the records it answered."""
        self.statuses[kind.name][answer.status_code] += 1
        if kind.valid and answer.status_code == 200:
            body = answer.json()
            answers = body if isinstance(body, list) else [body]
            self.answered.extend(a["request_id"] for a in answers)
        elif kind.valid:
            self.refused_valid += request.records


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return round(total / 1024**2, 1)


async def client_loop(
    client: httpx.AsyncClient,
    traffic: Traffic,
    tally: Tally,
    rng: random.Random,
    stop_at: float,
) -> None:
    """One connection's worth of traffic: a request at a time until ``stop_at``."""
    kinds, weights = list(KINDS), [k.share for k in KINDS]
    while time.monotonic() < stop_at:
        kind = rng.choices(kinds, weights)[0]
        request = traffic.request(kind.name, rng)
        try:
            answer = await client.post(
                request.path,
                content=request.content,
                headers={"content-type": request.content_type},
            )
        except httpx.TransportError as exc:
            tally.transport_errors[f"{kind.name}: {type(exc).__name__}"] += 1
            continue
        tally.count(kind, request, answer)


async def sample_memory(
    pid: int, start: float, stop_at: float, samples: list[dict[str, Any]], tally: Tally
) -> None:
    """RSS of the server's tree every SAMPLE_S seconds until ``stop_at``."""
    while time.monotonic() < stop_at:
        samples.append(
            {
                "t_s": round(time.monotonic() - start, 1),
                "rss_mb": tree_rss_mb(pid),
                "answered_records": len(tally.answered),
            }
        )
        await asyncio.sleep(min(SAMPLE_S, max(0.0, stop_at - time.monotonic())))


async def switch_state(
    client: httpx.AsyncClient, state_file: Path, state: dict[str, Any], at: float, start: float
) -> dict[str, Any]:
    """Write the desired state at monotonic time ``at``; wait until /metadata shows it."""
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    written = time.monotonic()
    written_utc = time.time()
    write_state(state_file, state)
    wanted = state.get("strategy", {}).get("type", "single")
    while time.monotonic() - written < 60:
        served = (await client.post("/metadata", json={})).json()["desired_state"]
        if served["strategy"]["type"] == wanted and served.get("challenger"):
            return {
                "written_at_s": round(written - start, 1),
                "written_utc": written_utc,
                "applied_after_s": round(time.monotonic() - written, 2),
                "state": served,
            }
        await asyncio.sleep(0.1)
    raise RuntimeError("the service did not apply the switched desired state within 60 s")


async def drive(
    url: str,
    pid: int,
    traffic: Traffic,
    seconds: float,
    state_file: Path,
    switched: dict[str, Any],
) -> dict[str, Any]:
    """Warm-up, then ``seconds`` of traffic with the state switched halfway; RSS sampled."""
    tally, samples = Tally(), list[dict[str, Any]]()
    connections = CONCURRENCY + 2  # the traffic's and the switch's /metadata polls
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        start = time.monotonic()
        stop_at = start + WARMUP_S + seconds
        loops = [
            client_loop(client, traffic, tally, random.Random(SEED + i), stop_at)
            for i in range(CONCURRENCY)
        ]
        tasks = [asyncio.ensure_future(loop) for loop in loops]
        await asyncio.sleep(WARMUP_S)
        rss_start = tree_rss_mb(pid)
        answered_at_start = len(tally.answered)
        sampler = asyncio.ensure_future(sample_memory(pid, start, stop_at, samples, tally))
        switch = await switch_state(
            client, state_file, switched, start + WARMUP_S + seconds / 2, start
        )
        await asyncio.gather(*tasks, sampler)
        rss_end = tree_rss_mb(pid)
        metrics = (await client.get("/metrics")).text
    return {
        "tally": tally,
        "samples": samples,
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
        "answered_records_at_start": answered_at_start,
        "switch": switch,
        "metrics": metrics,
        "traffic_s": round(time.monotonic() - start, 1),
    }


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write a desired-state file atomically (the service may be reading it)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(state, sort_keys=False))
    tmp.replace(path)


def save_challenger(settings: Settings, folder: Path) -> str:
    """A smaller model of the same recipe (fewer iterations where the estimator has
    them), fitted on a quarter of the training rows, saved in the model store with the
    champion's lineage but its own id and thresholds; its tag."""
    schema = settings.data_schema
    train = pd.read_parquet(REPO / paths.TRAIN).sample(frac=0.25, random_state=SEED)
    holdout = pd.read_parquet(REPO / paths.HOLDOUT)
    accepted = inspect.signature(load_estimator_class(settings.model.estimator)).parameters
    params = dict(settings.model.params) | ({"max_iter": 20} if "max_iter" in accepted else {})
    recipe = settings.model.model_copy(update={"params": params})
    model = fit(build_model(schema, recipe), train, schema)
    path = dump_model(model, folder / "model.joblib")
    digest = file_md5(path)
    scores = score(model, holdout, schema)
    lineage = read_json(REPO / paths.LINEAGE) | {
        "model_id": f"{settings.model.name}-{digest[:12]}",
        "model": {"md5": digest},
        "decision": {
            "threshold": Scored.at_review_rate(scores, settings.evaluation.review_rate).threshold,
            "decline_threshold": Scored.at_review_rate(
                scores, settings.evaluation.decline_rate
            ).threshold,
        },
    }
    reference = reference_values(train, schema, list(model.feature_names_in_))
    return store.save(settings.model.name, path, lineage, reference)


def start_server(
    folder: Path, state_file: Path, log_url: str
) -> tuple[str, subprocess.Popen[bytes]]:
    """`bentoml serve` of the current service on a free port of 127.0.0.1, output to
    <folder>/server.log; its URL and process once ready."""
    port = free_port()
    env = os.environ | {
        "MODELOPS_PARAMS": str(REPO / "params.yaml"),
        "MODELOPS_DESIRED_STATE": str(state_file),
        "MODELOPS_LOG_URL": log_url,
        "OMP_NUM_THREADS": "1",
    }
    command = ["bentoml", "serve", "modelops.serving.service:ModelService",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with (folder / "server.log").open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
    except RuntimeError:
        process.kill()
        raise
    return url, process


def stop_server(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM (the service writes what its log still buffers) and wait; the exit code."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def metric_sums(text: str) -> dict[str, float]:
    """Prometheus samples summed by name and, for HTTP requests, by status class."""
    sums: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{")[0]
        sums[name] += float(value)
        status = re.search(r'status="(\d)\d\d"', name_labels)
        if name == "modelops_http_requests_total" and status:
            sums[f"http_{status.group(1)}xx"] += float(value)
    return dict(sums)


def prediction_log(log_url: str, answered: list[str], switch_utc: float) -> dict[str, Any]:
    """The prediction log against the answers: one row per answered record (not shadow);
    shadow rows only for answered records, one each, none before the switch."""
    engine = sa.create_engine(log_url)
    with engine.connect() as connection:
        rows = pd.read_sql(
            sa.text("SELECT request_id, route, created_at FROM predictions"), connection
        )
    engine.dispose()
    rows["created_at"] = pd.to_datetime(rows["created_at"], utc=True, format="ISO8601")
    served, shadow = rows[rows["route"] != "shadow"], rows[rows["route"] == "shadow"]
    first_shadow = shadow["created_at"].min() if len(shadow) else None
    since_first_shadow = (
        int((served["created_at"] >= first_shadow).sum()) if first_shadow is not None else 0
    )
    answered_set = set(answered)
    return {
        "answered_records": len(answered),
        "answered_distinct": len(answered_set),
        "rows": len(served),
        "rows_distinct": int(served["request_id"].nunique()),
        "rows_match_answers": sorted(served["request_id"]) == sorted(answered),
        "shadow_rows": len(shadow),
        "shadow_rows_distinct": int(shadow["request_id"].nunique()),
        "shadow_rows_of_answered": int(shadow["request_id"].isin(answered_set).sum()),
        "shadow_rows_before_switch": int(
            (shadow["created_at"] < pd.Timestamp(switch_utc, unit="s", tz="UTC")).sum()
        ),
        "served_rows_since_first_shadow": since_first_shadow,
    }


def log_lines(path: Path, traffic_s: float) -> dict[str, Any]:
    """The server's log lines: client errors (the edge's, rate-limited) and the rest,
    against their bounds."""
    lines = path.read_text(errors="replace").splitlines()
    client = [line for line in lines if re.search(r"\bPOST \S+: 4\d\d ", line)]
    limit = LogLimit()
    client_bound = int(limit.burst + limit.per_second * traffic_s) + 1
    other = len(lines) - len(client)
    return {
        "total": len(lines),
        "client_errors": len(client),
        "client_errors_bound": client_bound,
        "other": other,
        "other_bound": OTHER_LINES_BOUND,
        "tracebacks": sum("Traceback" in line for line in lines),
        "within_bounds": len(client) <= client_bound and other <= OTHER_LINES_BOUND,
    }


def summarize(run: dict[str, Any], log: dict[str, Any], lines: dict[str, Any]) -> dict[str, Any]:
    """Figures and verdicts of one soak."""
    tally: Tally = run["tally"]
    samples = run["samples"]
    statuses = {k.name: dict(sorted(tally.statuses[k.name].items())) for k in KINDS}
    expected = {k.name: k.status for k in KINDS}
    unexpected = {
        kind: {s: n for s, n in counts.items() if s != expected[kind]}
        for kind, counts in statuses.items()
        if any(s != expected[kind] for s in counts)
    }
    five_xx = sum(n for counts in statuses.values() for s, n in counts.items() if s >= 500)
    rss_max = max([run["rss_start_mb"], run["rss_end_mb"], *(s["rss_mb"] for s in samples)])
    growth = round(run["rss_end_mb"] - run["rss_start_mb"], 1)
    metrics = metric_sums(run["metrics"])
    log_exact = (
        log["rows_match_answers"]
        and log["rows"] == log["rows_distinct"] == log["answered_records"]
        and log["shadow_rows"] == log["shadow_rows_distinct"] == log["shadow_rows_of_answered"]
        and log["shadow_rows"] > 0
        and log["shadow_rows_before_switch"] == 0
    )
    return {
        "requests": sum(sum(c.values()) for c in statuses.values()),
        "statuses": statuses,
        "unexpected_statuses": unexpected,
        "transport_errors": dict(tally.transport_errors),
        "five_xx": five_xx,
        "server_five_xx": int(metrics.get("http_5xx", 0)),
        "client_errors_unlogged": int(metrics.get("modelops_client_errors_unlogged_total", 0)),
        "log_dropped": int(metrics.get("modelops_prediction_log_dropped_total", 0)),
        "memory": {
            "rss_start_mb": run["rss_start_mb"],
            "rss_end_mb": run["rss_end_mb"],
            "rss_max_mb": rss_max,
            "growth_mb": growth,
            "bound_mb": MEMORY_BOUND_MB,
            "within_bound": growth <= MEMORY_BOUND_MB,
            "samples": samples,
        },
        "prediction_log": log | {"exact": log_exact},
        "log_lines": lines,
        "passed": (
            five_xx == 0
            and not unexpected
            and not tally.transport_errors
            and growth <= MEMORY_BOUND_MB
            and log_exact
            and lines["within_bounds"]
            and lines["tracebacks"] == 0
        ),
    }


def soak(settings: Settings, folder: Path, seconds: float) -> dict[str, Any]:
    """Save the two versions, serve, drive the traffic, stop; the figures."""
    champion = store.save_current(settings, REPO)
    challenger = save_challenger(settings, folder)
    for tag in (champion, challenger):  # the private store, never the repository's
        assert Path(bentoml.models.get(tag).path).is_relative_to(folder), tag
    state_file = folder / "state.yaml"
    write_state(state_file, {"champion": champion, "automation": "partial"})
    switched = {
        "champion": champion,
        "challenger": challenger,
        "strategy": {"type": "shadow"},
        "automation": "partial",
    }
    holdout = pd.read_parquet(REPO / paths.HOLDOUT).head(RECORDS)
    traffic = Traffic(settings, requests_from_frame(holdout, settings.data_schema))
    log_url = f"sqlite:///{folder / 'predictions.db'}"
    url, process = start_server(folder, state_file, log_url)
    try:
        run = asyncio.run(drive(url, process.pid, traffic, seconds, state_file, switched))
    finally:
        exit_code = stop_server(process)
    tally: Tally = run["tally"]
    log = prediction_log(log_url, tally.answered, run["switch"]["written_utc"])
    lines = log_lines(folder / "server.log", run["traffic_s"])
    return {
        "models": {"champion": champion, "challenger": challenger},
        "switch": {k: v for k, v in run["switch"].items() if k != "written_utc"},
        "exit_code": exit_code,
        "traffic_s": run["traffic_s"],
        "answered_records_after_warmup": len(tally.answered) - run["answered_records_at_start"],
    } | summarize(run, log, lines)


def report(results: dict[str, Any]) -> str:
    """The committed markdown."""
    mach, s = results["machine"], results["settings"]
    memory, log, lines = results["memory"], results["prediction_log"], results["log_lines"]
    verdict = "PASS" if results["passed"] else "FAIL"
    status_rows = [
        f"| {kind} | {s['expected_status'][kind]} | "
        + ", ".join(f"{status}: {n:,}" for status, n in counts.items())
        + " |"
        for kind, counts in results["statuses"].items()
    ]
    samples = memory["samples"]
    shown = samples[:: max(1, len(samples) // 12)]
    end = {
        "t_s": results["traffic_s"],
        "rss_mb": memory["rss_end_mb"],
        "answered_records": log["answered_records"],
    }
    rss_rows = [
        f"| {x['t_s']:.0f} | {x['rss_mb']:,.1f} | {x['answered_records']:,} |"
        for x in [*shown, end]
    ]
    return "\n".join(
        [
            "# Soak",
            "",
            f"`bench/soak.py` on {mach['cpu']}, {mach['cores']} cores, {mach['date']}: "
            f"the current service (`bentoml serve`, one worker, SQLite prediction log) on "
            f"127.0.0.1, {s['warmup_s']} s warm-up then {s['seconds']:.0f} s of traffic at "
            f"concurrency {s['concurrency']} from one asyncio client (httpx) on the same "
            f"machine. Champion {results['models']['champion']}; at "
            f"{results['switch']['written_at_s']} s the desired state switched to the "
            f"champion with the challenger {results['models']['challenger']} in shadow "
            f"(applied "
            f"{results['switch']['applied_after_s']} s after the file was written).",
            "",
            f"**{verdict}**: {results['five_xx']} 5xx (server's /metrics: "
            f"{results['server_five_xx']}), unexpected statuses in "
            f"{len(results['unexpected_statuses'])} of {len(results['statuses'])} kinds of "
            f"request, {sum(results['transport_errors'].values())} transport errors; "
            f"RSS {memory['rss_start_mb']:,.1f} MB after warm-up, "
            f"{memory['rss_end_mb']:,.1f} MB at the end (max {memory['rss_max_mb']:,.1f}), "
            f"growth {memory['growth_mb']:+.1f} MB against a bound of {memory['bound_mb']} MB; "
            f"{log['answered_records']:,} answered records, {log['rows']:,} prediction-log "
            f"rows ({'one per answered record' if log['exact'] else 'NOT one per record'}).",
            "",
            "## Requests",
            "",
            f"{results['requests']:,} requests in {results['traffic_s']} s (warm-up included).",
            "",
            "| kind | must get | got |",
            "|---|---:|---|",
            *status_rows,
            "",
            "## Prediction log",
            "",
            f"- answered records (200 answers, by request id): {log['answered_records']:,} "
            f"({log['answered_distinct']:,} distinct)",
            f"- rows served (champion): {log['rows']:,} ({log['rows_distinct']:,} distinct); "
            f"the same request ids as the answers: {log['rows_match_answers']}",
            f"- shadow rows: {log['shadow_rows']:,} ({log['shadow_rows_distinct']:,} distinct, "
            f"{log['shadow_rows_of_answered']:,} of answered records, "
            f"{log['shadow_rows_before_switch']} before the switch); served rows logged since "
            f"the first shadow row: {log['served_rows_since_first_shadow']:,} (more only by "
            "records routed before the switch and answered after it)",
            f"- records dropped by the log's buffer: {results['log_dropped']}",
            "",
            "## Server log lines",
            "",
            f"- {lines['total']:,} lines: {lines['client_errors']:,} client errors (bound "
            f"{lines['client_errors_bound']:,}: the edge's burst plus its rate times the "
            f"traffic's seconds; {results['client_errors_unlogged']:,} more counted in "
            f"modelops_client_errors_unlogged_total), {lines['other']} others (bound "
            f"{lines['other_bound']}), {lines['tracebacks']} tracebacks",
            "",
            "## Memory (RSS of the server's process tree)",
            "",
            f"Bound: growth from after the warm-up to the end at most {memory['bound_mb']} MB "
            "(the challenger loaded at the switch included).",
            "",
            "| t (s) | RSS MB | answered records so far |",
            "|---:|---:|---:|",
            *rss_rows,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=SECONDS, help="traffic after warm-up")
    parser.add_argument("--report-only", action="store_true", help="rewrite soak.md from soak.json")
    args = parser.parse_args()
    if args.report_only:
        (RESULTS / "soak.md").write_text(report(json.loads((RESULTS / "soak.json").read_text())))
        return
    settings = load_settings(REPO / "params.yaml")
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        folder = Path(tmp)
        os.environ["BENTOML_HOME"] = str(folder / "bentoml")  # read at the store's first use
        figures = soak(settings, folder, args.seconds)
    results = {
        "machine": machine(),
        "settings": {
            "seconds": args.seconds,
            "warmup_s": WARMUP_S,
            "concurrency": CONCURRENCY,
            "sample_s": SAMPLE_S,
            "shares": {k.name: k.share for k in KINDS},
            "expected_status": {k.name: k.status for k in KINDS},
            "memory_bound_mb": MEMORY_BOUND_MB,
        },
    } | figures
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (RESULTS / "soak.md").write_text(report(results))
    print(report(results))
    if not results["passed"]:
        raise SystemExit("soak: FAIL (see bench/results/soak.md)")


if __name__ == "__main__":
    main()
