"""The serving core, independent of BentoML: what is served (an immutable snapshot of
desired state and loaded models, swapped atomically), adaptive batching, routing,
decisions, the prediction log and metrics.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelops.errors import InputError
from modelops.schema import Schema
from modelops.serving import telemetry
from modelops.serving.policy import Decision, Route, Thresholds, decide, in_effect, plan
from modelops.serving.predlog import PredictionLog
from modelops.serving.problem import LogLimit, escape
from modelops.serving.scorer import Reason
from modelops.serving.state import Automation, DesiredState, DesiredStateError
from modelops.serving.store import ModelVersion

log = logging.getLogger(__name__)


class NotServingError(RuntimeError):
    """A request arrived before any desired state could be applied."""


@dataclass(frozen=True)
class Served:
    """What the service serves right now: never mutated, replaced as a whole."""

    state: DesiredState
    models: dict[str, ModelVersion]

    def thresholds(self, version: str) -> Thresholds:
        """The version's own thresholds unless the desired state overrides them."""
        return in_effect(self.models[version].thresholds, self.state)


@dataclass(frozen=True)
class Job:
    """One record to score with one model."""

    model: ModelVersion
    record: dict[str, Any]
    explain: int


Result = tuple[float, list[Reason]]


class ScoringError(Exception):
    """One record could not be scored: the model raised, or returned a non-finite score.
    ``by_input``: the model still scores a typical record, so this record's values are
    the cause (the client gets a 422); otherwise the model itself is broken (a 500)."""

    def __init__(self, version: str, reason: str, *, by_input: bool) -> None:
        super().__init__(f"model {version} {reason}")
        self.version, self.by_input = version, by_input


Outcome = Result | ScoringError
FAILURE_LOG = LogLimit()  # a model failing on every record must not flood the log


def compute(jobs: Sequence[Job]) -> list[Outcome]:
    """Score jobs, one model call per (model, explain) group. A failing call is split in
    halves until the failing records are alone, so only they get a ScoringError."""
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, job in enumerate(jobs):
        groups[(job.model.tag, job.explain)].append(i)
    outcomes: list[Outcome] = [(0.0, [])] * len(jobs)
    for (_, explain), indices in groups.items():
        model = jobs[indices[0]].model
        scored = _score(model, [jobs[i].record for i in indices], explain)
        for i, outcome in zip(indices, scored, strict=True):
            outcomes[i] = outcome
    return outcomes


def _score(model: ModelVersion, records: list[dict[str, Any]], explain: int) -> list[Outcome]:
    try:
        scores, reasons = model.scorer.score_and_explain(records, explain)
    except Exception as exc:
        if len(records) > 1:
            half = len(records) // 2
            return _score(model, records[:half], explain) + _score(model, records[half:], explain)
        telemetry.SCORING_FAILURES.labels(version=model.tag, reason="exception").inc()
        if FAILURE_LOG.allow():
            suppressed, FAILURE_LOG.suppressed = FAILURE_LOG.suppressed, 0
            log.warning(
                "model %s failed to score a record: %s%s", model.tag, escape(repr(exc), 300),
                f" ({suppressed} more not logged before this one)" if suppressed else "",
            )  # fmt: skip
        return [ScoringError(model.tag, "failed to score this record", by_input=_works(model))]
    outcomes: list[Outcome] = []
    for score, why in zip(scores, reasons, strict=True):
        if math.isfinite(score):
            outcomes.append((float(score), why))
            continue
        telemetry.SCORING_FAILURES.labels(version=model.tag, reason="non_finite").inc()
        outcomes.append(
            ScoringError(
                model.tag, f"returned a non-finite score ({score})", by_input=_works(model)
            )
        )
    return outcomes


def _works(model: ModelVersion) -> bool:
    """Whether the model scores its typical record (a finite score)."""
    try:
        return bool(np.isfinite(model.scorer.score([model.scorer.reference])).all())
    except Exception:
        return False


@dataclass
class Batcher:
    """Adaptive batching: while the scoring thread works on one batch, requests queue
    up; the next batch takes everything queued (up to ``max_rows``). Idle, a request is
    scored at once, with no batching window to wait for."""

    max_rows: int
    _queue: asyncio.Queue[tuple[list[Job], asyncio.Future[list[Outcome]]]] | None = None
    _task: asyncio.Task[None] | None = None
    _executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="score")
    )

    async def submit(self, jobs: list[Job]) -> list[Outcome]:
        """Score jobs in the next batch: a result or a ScoringError per job."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((jobs, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            items = [await self._queue.get()]
            rows = len(items[0][0])
            while not self._queue.empty() and rows < self.max_rows:
                items.append(self._queue.get_nowait())
                rows += len(items[-1][0])
            jobs = [job for batch, _ in items for job in batch]
            telemetry.BATCH_ROWS.observe(len(jobs))
            try:
                results = await loop.run_in_executor(self._executor, compute, jobs)
            except Exception as exc:  # a bug of compute itself: fail the batch, keep serving
                log.exception("scoring failed")
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for batch, future in items:
                if not future.done():
                    future.set_result(results[start : start + len(batch)])
                start += len(batch)


class Engine:
    """Routes, scores, decides and logs; applies new desired states atomically."""

    def __init__(
        self,
        schema: Schema,
        prediction_log: PredictionLog,
        load: Callable[[str], ModelVersion],
        *,
        reason_codes: int,
        batch_max_rows: int,
        id_field: str = "record_id",
    ) -> None:
        self.schema = schema
        self.id_field = id_field  # what answers call the record's id (words.id_field)
        self.log = prediction_log
        self.load = load
        self.reason_codes = reason_codes
        self.batcher = Batcher(batch_max_rows)
        self.served: Served | None = None
        self.previous: Served | None = None
        self._apply_lock = threading.Lock()

    def apply(self, state: DesiredState) -> Served:
        """Load what ``state`` needs (reusing loaded versions), then switch in one step.
        On any error nothing changes. The versions of the state being replaced stay
        loaded, so switching back is instant."""
        with self._apply_lock:
            loaded = {
                tag: model
                for served in (self.served, self.previous)
                if served
                for tag, model in served.models.items()
            }
            models = {tag: loaded.get(tag) or self.load(tag) for tag in state.versions}
            if self.served and self.served.state != state:
                self.previous = self.served
            self.served = Served(state, models)
            log.info("serving %s", state.model_dump(mode="json"))
            return self.served

    def ready(self) -> bool:
        """Every model the desired state names is loaded."""
        served = self.served
        return served is not None and all(v in served.models for v in served.state.versions)

    async def predict(self, records: list[dict[str, Any]], endpoint: str) -> list[dict]:
        """Answer records (JSON-ready dicts validated against the contract)."""
        start = time.perf_counter()
        served = self.served
        if served is None:
            raise NotServingError("no valid desired state has been applied: see /metadata")
        entity = self.schema.entity_column or self.schema.id_column
        id_column = self.schema.id_column
        request_ids = [uuid.uuid4().hex for _ in records]
        # sticky per entity (or record id); with neither, each request is its own unit
        keys = [
            str(r.get(entity)) if entity else rid
            for r, rid in zip(records, request_ids, strict=True)
        ]
        plans = [plan(served.state, key) for key in keys]
        jobs = [
            Job(served.models[p.version], r, self.reason_codes)
            for p, r in zip(plans, records, strict=True)
        ]
        shadows = [
            (i, Job(served.models[p.shadow], records[i], 0))
            for i, p in enumerate(plans)
            if p.shadow
        ]
        outcomes = await self.batcher.submit(jobs + [job for _, job in shadows])
        results = [_result(o) for o in outcomes[: len(jobs)]]  # a failed record fails its request
        latency_ms = (time.perf_counter() - start) * 1000
        now = dt.datetime.now(dt.UTC)
        automation = served.state.automation
        answers, rows = [], []
        for p, r, request_id, (score, reasons) in zip(
            plans, records, request_ids, results, strict=True
        ):
            decision = decide(score, automation, served.thresholds(p.version))
            answers.append(
                {
                    "request_id": request_id,
                    self.id_field: str(r.get(id_column) if id_column else request_id),
                    "score": None if automation == Automation.SHADOW else score,
                    "decision": decision.value,
                    "automation": automation.value,
                    "model_version": p.version,
                    "route": p.route.value,
                    "reasons": []
                    if automation == Automation.SHADOW
                    else [asdict(r) for r in reasons],
                }
            )
            rows.append(self._row(answers[-1], r, score, now, latency_ms, reasons))
            self._count(decision, p.version, p.route, score)
        for (i, job), outcome in zip(shadows, outcomes[len(jobs) :], strict=True):
            if isinstance(outcome, ScoringError):  # counted; the answer does not depend on it
                continue
            answer = answers[i] | {"model_version": job.model.tag, "route": Route.SHADOW.value}
            answer["decision"] = Decision.NONE.value
            rows.append(self._row(answer, job.record, outcome[0], now, latency_ms, []))
            self._count(Decision.NONE, job.model.tag, Route.SHADOW, outcome[0])
        self.log.record(rows)
        telemetry.LATENCY.labels(endpoint=endpoint).observe(time.perf_counter() - start)
        return answers

    def _row(
        self,
        answer: dict[str, Any],
        record: dict[str, Any],
        score: float,
        now: dt.datetime,
        latency_ms: float,
        reasons: list[Reason],
    ) -> dict[str, Any]:
        entity = self.schema.entity_column
        return {
            "request_id": answer["request_id"],
            "record_id": answer[self.id_field],
            "entity_id": record.get(entity) if entity else None,
            "created_at": now,
            "model_version": answer["model_version"],
            "route": answer["route"],
            "automation": answer["automation"],
            "score": score,
            "decision": answer["decision"],
            "latency_ms": round(latency_ms, 3),
            "inputs": record,
            "reasons": [asdict(r) for r in reasons],
        }

    @staticmethod
    def _count(decision: Decision, version: str, route: Route, score: float) -> None:
        telemetry.PREDICTIONS.labels(decision=decision.value, version=version, route=route).inc()
        telemetry.SCORES.labels(version=version, route=route).observe(score)


def _result(outcome: Outcome) -> Result:
    if isinstance(outcome, ScoringError):
        raise outcome
    return outcome


class StateWatcher:
    """Applies the desired-state file whenever its content changes (GitOps: the file
    is the only way to change what is served, besides the token-guarded reload API)."""

    def __init__(
        self,
        path: Path,
        engine: Engine,
        parse: Callable[[str, str], DesiredState],
        interval_s: float,
    ) -> None:
        self.path = path
        self.engine = engine
        self.parse = parse
        self.interval_s = interval_s
        self.seen_text: str | None = None  # the file content last applied or refused
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="desired-state", daemon=True)

    def check(self, force: bool = False) -> Served | None:
        """Apply the file if it changed (or ``force``). Raises InputError if it is
        invalid or names a model that cannot be served; what is served is unchanged."""
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise DesiredStateError(f"{self.path}: cannot read: {exc}") from exc
        if text == self.seen_text and not force:
            return None
        try:
            served = self.engine.apply(self.parse(text, str(self.path)))
        except InputError as exc:
            self.last_error = str(exc)
            self.seen_text = text  # report once; retried when the file changes again
            telemetry.STATE_CHANGES.labels(outcome="refused").inc()
            raise
        self.seen_text, self.last_error = text, None
        telemetry.STATE_CHANGES.labels(outcome="applied").inc()
        return served

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except InputError as exc:
                log.error("desired state refused, still serving the previous one: %s", exc)

    def start(self) -> StateWatcher:
        """Poll the file in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
