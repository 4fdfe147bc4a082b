"""Serving parity (``modelops parity``): the pull request's model, served from its Bento
on 127.0.0.1, must answer as the offline path scores.

The rows: a seeded sample of the holdout, then changed copies of sample rows, so that
each value the schema enumerates (categories, allowed ints) and a missing value of each
column the API lets be missing occur at least once. Every row goes through the one-row
endpoint and through the batch endpoint (the service has a separate one-row path). The
references: the holdout scores the evaluate stage wrote, and ``training.scoring.score``
for the changed copies; the expected decision follows from the reference score by the
service's own policy (the version's thresholds, the automation mode). The server gets
its own desired state (the saved model, strategy single) and its own SQLite prediction
log, in a temporary folder under reports/pr/, and is always stopped. The outcome goes to
reports/pr/parity.json, which the parity gate judges.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml

from modelops import paths
from modelops.config import Settings
from modelops.errors import InputError
from modelops.io import load_model, read_json, write_json
from modelops.schema import Schema
from modelops.serving import bento
from modelops.serving.contract import OPTIONAL_ROLES, ApiNames, requests_from_frame
from modelops.serving.policy import Thresholds, decide, in_effect
from modelops.serving.state import Automation, DesiredState
from modelops.serving.store import version_tag
from modelops.training.scoring import score

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
ONE_ROW, BATCH = "/predict", "/predict_batch"
MAX_EXAMPLES = 10
START_TIMEOUT_S = 90.0  # until /readyz answers
REQUEST_TIMEOUT_S = 30.0  # each request
REPLAY_TIMEOUT_S = 300.0  # all requests together
STOP_TIMEOUT_S = 30.0  # after SIGTERM; then SIGKILL
STATE_FILE = "desired_state.yaml"
STATE_VARIABLE = "MODELOPS_DESIRED_STATE"  # the service reads its desired state from there


class ParityError(RuntimeError):
    """The service could not be measured: it did not start, or did not answer properly."""


@dataclass(frozen=True)
class Rows:
    """What is replayed: sampled holdout rows as they are, then changed copies of some of
    them (``changed``: what was set in each, "column=value"). A row's key is its id, or
    its position in the holdout when the schema has no id column."""

    sample: pd.DataFrame
    copies: pd.DataFrame
    changed: list[str]
    id_column: str | None

    @property
    def keys(self) -> list[Any]:
        """Each row's key: the sample's, then the copies'."""
        return [
            key
            for part in (self.sample, self.copies)
            for key in (part[self.id_column] if self.id_column else part.index).tolist()
        ]

    @property
    def changes(self) -> list[str | None]:
        """Each row's change: None for the sample's rows."""
        return [None] * len(self.sample) + list(self.changed)

    def records(self, schema: Schema) -> list[dict[str, Any]]:
        """Each row as an API record."""
        return requests_from_frame(self.sample, schema) + requests_from_frame(self.copies, schema)


@dataclass(frozen=True)
class Plan:
    """The rows to replay, their offline scores and the decisions these imply under the
    desired state the service is given."""

    rows: Rows
    offline: np.ndarray
    expected: list[str]
    state: DesiredState


def required_values(schema: Schema) -> list[tuple[str, Any]]:
    """(column, value) pairs a replay must contain: each category and allowed int of each
    column the API takes, and None for each column it lets be missing."""
    pairs: list[tuple[str, Any]] = []
    for name, spec in schema.columns.items():
        if name == schema.target:
            continue
        pairs += [(name, value) for value in spec.categories or spec.allowed or ()]
        if spec.nullable or spec.role in OPTIONAL_ROLES:
            pairs.append((name, None))
    return pairs


def select_rows(holdout: pd.DataFrame, schema: Schema, rows: int, seed: int) -> Rows:
    """``rows`` holdout rows drawn with ``seed`` (in holdout order), and a changed copy of
    a sample row for each required value the sample lacks."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    holdout = holdout.reset_index(drop=True)
    draw = np.random.default_rng(seed).choice(len(holdout), min(rows, len(holdout)), False)
    sample = holdout.iloc[np.sort(draw)]
    lacking = [(c, v) for c, v in required_values(schema) if not _present(sample[c], v)]
    copies = sample.iloc[[i % len(sample) for i in range(len(lacking))]].copy()
    for i, (column, value) in enumerate(lacking):
        _set(copies, i, column, value)
    changed = [f"{c}={'missing' if v is None else v}" for c, v in lacking]
    return Rows(sample, copies, changed, schema.id_column)


def _present(values: pd.Series, value: Any) -> bool:
    return bool(values.isna().any() if value is None else values.eq(value).any())


def _set(frame: pd.DataFrame, row: int, column: str, value: Any) -> None:
    """Set one cell; a missing value widens an int column to float, a bool one to object."""
    kind = frame[column].dtype.kind
    if value is None and kind in "iub":
        frame[column] = frame[column].astype("float64" if kind in "iu" else object)
    frame.iloc[row, list(frame.columns).index(column)] = value


def reference_scores(
    rows: Rows, holdout_scores: pd.DataFrame, model: Any, schema: Schema
) -> np.ndarray:
    """Offline scores: the evaluate stage's for the sampled rows (found by key), and
    ``training.scoring.score`` for the changed copies."""
    key = schema.id_column or "row"  # what evaluate names the key column
    recorded = holdout_scores.set_index(key)["score"].reindex(rows.keys[: len(rows.sample)])
    if recorded.isna().any():
        raise InputError(
            f"{paths.HOLDOUT_SCORES} has no score for some holdout rows: run `make repro`"
        )
    changed = score(model, rows.copies, schema) if len(rows.copies) else []
    return np.concatenate([recorded.to_numpy(dtype=float), np.asarray(changed, dtype=float)])


def compare(
    keys: list[Any],
    changes: list[str | None],
    offline: np.ndarray,
    expected: list[str],
    answers: dict[str, list[dict[str, Any]]],
    tolerance: float,
) -> dict[str, Any]:
    """Each endpoint's answers (in row order) against the offline scores and expected
    decisions: counts of mismatching rows, and examples, decision mismatches first, then
    by score difference."""
    score_off = np.zeros(len(offline), dtype=bool)
    decision_off = np.zeros(len(offline), dtype=bool)
    largest, examples = 0.0, []
    for endpoint, served in answers.items():
        scores = np.array([a["score"] for a in served], dtype=float)
        diff = np.abs(scores - offline)
        diff[~np.isfinite(diff)] = np.inf  # a non-finite served score is as wrong as can be
        wrong_score = diff > tolerance
        wrong_decision = np.array([a["decision"] for a in served]) != np.array(expected)
        score_off |= wrong_score
        decision_off |= wrong_decision
        largest = max(largest, float(diff.max()))
        examples += [
            {
                "row": keys[i],
                "changed": changes[i],
                "endpoint": endpoint,
                "offline": float(offline[i]),
                "served": float(scores[i]),
                "expected_decision": expected[i],
                "served_decision": served[i]["decision"],
            }
            for i in np.flatnonzero(wrong_score | wrong_decision)
        ]
    examples.sort(key=_badness, reverse=True)
    return {
        "rows": len(offline),
        "max_abs_diff": largest,
        "score_mismatches": int(score_off.sum()),
        "decision_mismatches": int(decision_off.sum()),
        "examples": examples[:MAX_EXAMPLES],
    }


def _badness(example: dict[str, Any]) -> tuple[bool, float]:
    wrong_decision = example["served_decision"] != example["expected_decision"]
    return wrong_decision, abs(example["served"] - example["offline"])


@contextmanager
def workspace(state: DesiredState) -> Iterator[Path]:
    """A temporary folder under reports/pr/ holding ``state`` as its desired-state file
    (the server's prediction log goes there too); removed on the way out."""
    paths.PR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parity-", dir=paths.PR) as tmp:
        folder = Path(tmp).resolve()
        text = yaml.safe_dump(state.model_dump(mode="json"), sort_keys=False)
        (folder / STATE_FILE).write_text(text)
        yield folder


def build(settings: Settings, folder: Path) -> str:
    """Build the Bento of the pipeline's model with the desired state of ``folder``: the
    service it imports declares that state's model, not what deploy/ names (a version
    pinned there need not be in this model store)."""
    before = os.environ.get(STATE_VARIABLE)
    os.environ[STATE_VARIABLE] = str(folder / STATE_FILE)
    try:
        return bento.build(settings)
    finally:
        if before is None:
            del os.environ[STATE_VARIABLE]
        else:
            os.environ[STATE_VARIABLE] = before


@contextmanager
def serving(settings: Settings, bento_tag: str, folder: Path) -> Iterator[str]:
    """Serve ``bento_tag`` on a free port of 127.0.0.1 with the desired state of
    ``folder`` and a new SQLite prediction log there; yield the server's URL. The server
    is stopped on the way out, whatever happened."""
    env = bento.server_env(settings) | {
        STATE_VARIABLE: str(folder / STATE_FILE),
        "MODELOPS_LOG_URL": f"sqlite:///{folder / 'predictions.db'}",
    }
    port = bento.free_port()
    output = folder / "server.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            bento.serve_command(bento_tag, HOST, port),
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: all of it can be killed
        )
    try:
        url = f"http://{HOST}:{port}"
        try:
            bento.wait_ready(url, process, START_TIMEOUT_S)
        except RuntimeError as exc:
            tail = output.read_text(errors="replace")[-2000:]
            raise ParityError(f"{exc}; its last output:\n{tail}") from exc
        yield url
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM; SIGKILL to its process group if it has not exited in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def replay(
    url: str, names: ApiNames, records: list[dict[str, Any]], batch_size: int
) -> dict[str, list[dict[str, Any]]]:
    """Every record through the one-row endpoint, then through the batch endpoint in
    batches of ``batch_size``: the answers per endpoint, in record order."""
    deadline = time.monotonic() + REPLAY_TIMEOUT_S
    # trust_env off: straight to 127.0.0.1, never through a proxy from the environment
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:

        def post(path: str, body: dict[str, Any]) -> Any:
            if time.monotonic() > deadline:
                raise ParityError(f"the replay took longer than {REPLAY_TIMEOUT_S:.0f} s")
            try:
                response = client.post(path, json=body)
            except httpx.HTTPError as exc:
                raise ParityError(f"POST {path}: {exc!r}") from exc
            if response.status_code != 200:
                raise ParityError(
                    f"POST {path} answered {response.status_code}: {response.text[:500]}"
                )
            return response.json()

        answers = {
            ONE_ROW: [post(ONE_ROW, {names.record: record}) for record in records],
            BATCH: [
                answer
                for start in range(0, len(records), batch_size)
                for answer in post(BATCH, {names.records: records[start : start + batch_size]})
            ],
        }
    for endpoint, served in answers.items():
        if len(served) != len(records):
            raise ParityError(f"{endpoint}: {len(served)} answers to {len(records)} records")
        scoreless = [a for a in served if not isinstance(a.get("score"), int | float)]
        if scoreless:
            raise ParityError(f"{endpoint} answered without a score: {scoreless[0]}")
    return answers


def measure(
    settings: Settings,
    *,
    rows: int | None = None,
    automation: Automation = Automation.PARTIAL,
    out: Path = paths.PARITY,
) -> dict[str, Any]:
    """Build the Bento of the pipeline's model, serve it, replay sampled holdout rows
    (``gates.parity``: how many, the seed, the tolerance; ``rows`` overrides) and the
    changed copies, and compare; write the outcome to ``out`` and return it. Its status
    is "error", with the reason, when the measurement could not be made."""
    knobs = settings.gates.parity
    rows, seed, tolerance = rows or knobs.rows, knobs.seed, knobs.tolerance
    started = time.perf_counter()
    outcome: dict[str, Any] = {
        "status": "error",
        "error": None,
        "rows": 0,
        "endpoints": [ONE_ROW, BATCH],
        "tolerance": tolerance,
        "max_abs_diff": None,
        "score_mismatches": 0,
        "decision_mismatches": 0,
        "examples": [],
        "model": None,
        "seconds": 0.0,
    }
    try:
        lineage = read_json(paths.LINEAGE)
        outcome["model"] = version_tag(settings.model.name, lineage)
        outcome |= _measure(settings, outcome["model"], lineage, rows, seed, tolerance, automation)
        outcome["status"] = "measured"
    except Exception as exc:  # whatever stopped the measurement, the record says what
        outcome["error"] = f"{type(exc).__name__}: {exc}"
    outcome["seconds"] = round(time.perf_counter() - started, 3)
    write_json(outcome, out)
    if outcome["status"] == "error":
        log.error("serving parity not measured: %s", outcome["error"])
    return outcome


def prepare(
    settings: Settings,
    tag: str,
    lineage: dict[str, Any],
    rows: int,
    seed: int,
    automation: Automation,
) -> Plan:
    """The rows, their offline scores and expected decisions for serving model ``tag``
    (with its ``lineage``) under ``automation``."""
    if automation == Automation.SHADOW:
        raise ValueError("under shadow automation the service returns no scores to compare")
    schema = settings.data_schema
    holdout = pd.read_parquet(paths.HOLDOUT)
    holdout_scores = pd.read_parquet(paths.HOLDOUT_SCORES)
    if len(holdout_scores) != len(holdout):
        raise InputError(f"{paths.HOLDOUT_SCORES} is not of {paths.HOLDOUT}: run `make repro`")
    chosen = select_rows(holdout, schema, rows, seed)
    offline = reference_scores(chosen, holdout_scores, load_model(paths.MODEL), schema)
    state = DesiredState(champion=tag, automation=automation)
    own = Thresholds(lineage["decision"]["threshold"], lineage["decision"]["decline_threshold"])
    thresholds = in_effect(own, state)
    expected = [decide(float(s), automation, thresholds).value for s in offline]
    return Plan(chosen, offline, expected, state)


def _measure(
    settings: Settings,
    tag: str,
    lineage: dict[str, Any],
    rows: int,
    seed: int,
    tolerance: float,
    automation: Automation,
) -> dict[str, Any]:
    plan = prepare(settings, tag, lineage, rows, seed, automation)
    names = ApiNames.from_words(settings.words)
    records = plan.rows.records(settings.data_schema)
    with workspace(plan.state) as folder:
        clock = [time.perf_counter()]
        bento_tag = build(settings, folder)
        clock.append(time.perf_counter())
        with serving(settings, bento_tag, folder) as url:
            clock.append(time.perf_counter())
            answers = replay(url, names, records, settings.serving.max_batch_size)
            clock.append(time.perf_counter())
        clock.append(time.perf_counter())
    chosen = plan.rows
    result = compare(chosen.keys, chosen.changes, plan.offline, plan.expected, answers, tolerance)
    build_s, start_s, replay_s, stop_s = np.diff(clock)
    log.info(
        "serving parity of %s: %d rows (%d changed) through %s and %s; max |served - "
        "offline| %.3g, %d score and %d decision mismatches (Bento %.1f s, start %.1f s, "
        "replay %.1f s, stop %.1f s)",
        tag, result["rows"], len(chosen.copies), ONE_ROW, BATCH, result["max_abs_diff"],
        result["score_mismatches"], result["decision_mismatches"],
        build_s, start_s, replay_s, stop_s,
    )  # fmt: skip
    return result
