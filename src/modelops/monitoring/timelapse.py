"""The time-lapse (`make timelapse WEEKS=N`): the whole loop replayed on the example's
simulated weeks after the training data, once per retraining strategy, on the same weeks.

Each strategy gets a temporary copy of the project (a git repository of its own: the
desired-state file, the current model, params.yaml) and a local service started on it
(release/deploy.py; the BentoML store is the caller's, see ``main``). Every week:

1. **traffic**: the week's records go through the service's /predict_batch; records the
   service refuses (400 for a field that breaks the contract, 422 for one it cannot
   score) are counted by status, never a crash. The service logs wall-clock times; the
   time-lapse moves each logged prediction to its record's own (simulated) time, so the
   log reads as if the weeks had passed.
2. **truth**: the strategy's champion scores the whole week in-process (the same
   Pipeline the service serves: the parity check proves their scores equal), records
   the service refused included (what the model would say of them), judged on the
   simulator's labels: ROC-AUC, recall at the action budget (``evaluation.review_rate``)
   and cost per 1,000 records (training/metrics.py), the cost in true units even after
   an upstream change of units (a missed record loses what it is worth).
3. **labels** arrive late, seeded per week (the same for every strategy):
   a positive after a chargeback delay: ``positive_min_days`` (7) plus a lognormal with
   median ``positive_median_days`` (5) and log-SD ``positive_sigma`` (0.7), so none
   within its own week, half within 12 days, 90 % within 19, 99 % within 32; a negative
   is confirmed ``negative_days`` (30) plus uniform(0, ``negative_jitter_days``
   (3)) days after its record, or never when only positives are reported
   (``monitoring.labels.unlabelled: negative``, the example's). Each label due by the
   week's end is written to the log's feedback table with its simulated arrival time
   (the row /feedback writes: one HTTP request and one database commit per label would
   cost more than the rest of the replay). A record the service refused has no
   prediction, so its label is dropped.
4. **monitoring**: ``monitoring.check.run`` on the strategy's log at the week's end;
   its report goes to ``<out>/<strategy>/week-<w>/``. Each promoted model brings its
   reference profile (models/profile.json in the copy, and beside it in the store).
5. **retraining**, when the strategy asks for it (never; every week; when the verdict is
   ``retrain``): a challenger with the same model settings is fitted on the
   ``window_weeks`` most recent weeks whose labels are in (a week is *matured* once its
   negatives can all have arrived, or, when only positives are reported, once
   ``labels.min_maturity`` of them have, the rest counted as 0; the training data's own
   weeks are labelled already), using only the labels arrived by then, and is compared
   with the champion on the latest matured week, which it was not fitted on: the review
   code's paired bootstrap and its floors, champion and calibration gates. Only a PASS
   promotes it: saved to the model store, written into the copy's desired-state file and
   committed, applied by the service's reload; a state the service refuses is rolled
   back (a revert commit, as `make rollback`).

Outputs in ``out`` (reports/timelapse): ``weekly.csv`` (one row per strategy and week),
``timelapse.json``, ``summary.md`` and ``timelapse.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from modelops import paths
from modelops.config import LabelSettings, Settings
from modelops.errors import InputError
from modelops.io import write_json
from modelops.monitoring import check
from modelops.monitoring.check import Verdict
from modelops.monitoring.cli import OUT, STRATEGIES, WINDOW_WEEKS
from modelops.vcs import git

ENV = "local"  # the copy's environment the service serves
PHASES = ("traffic", "truth", "labels", "monitoring", "retraining")
IDENTITY = {
    "GIT_AUTHOR_NAME": "modelops timelapse", "GIT_AUTHOR_EMAIL": "timelapse@localhost",
    "GIT_COMMITTER_NAME": "modelops timelapse", "GIT_COMMITTER_EMAIL": "timelapse@localhost",
}  # fmt: skip
COPIED = (Path("params.yaml"), paths.MODEL, paths.LINEAGE, paths.PROFILE)
INDEX = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")  # a record's position in a field error's path


class TimelapseError(InputError):
    """The time-lapse cannot run (no simulator, no model, no monitoring check)."""


Check = Callable[..., Verdict]  # check.run(root, settings, log_url, now=..., out=...)


@dataclass(frozen=True)
class LabelDelays:
    """How late labels arrive (days after the record)."""

    positive_min_days: float = 7.0  # chargebacks: at least this...
    positive_median_days: float = 5.0  # ...plus a lognormal with this median
    positive_sigma: float = 0.7
    negative_days: float = 30.0  # a negative is confirmed after this...
    negative_jitter_days: float = 3.0  # ...plus uniform(0, this)

    def draw(self, labels: np.ndarray, seed: int, week: int) -> np.ndarray:
        """Each record's delay in days (seeded by ``seed`` and the week)."""
        rng = np.random.default_rng([seed, 7, week])
        spread = np.exp(self.positive_sigma * rng.standard_normal(labels.size))
        positive = self.positive_min_days + self.positive_median_days * spread
        negative = self.negative_days + self.negative_jitter_days * rng.random(labels.size)
        return np.where(labels == 1, positive, negative)

    @property
    def matured_days(self) -> float:
        """Age after which every label of a record has arrived but for late positives."""
        return self.negative_days + self.negative_jitter_days

    def positives_in(self, share: float) -> float:
        """Age by which ``share`` of the positives' labels have arrived."""
        from scipy.stats import norm

        spread = np.exp(self.positive_sigma * norm.ppf(share))
        return float(self.positive_min_days + self.positive_median_days * spread)

    def mature_after(self, labels: LabelSettings) -> float:
        """Days after which a record's label counts as in: when both classes are reported,
        once its negative is; when only positives are (``labels.unlabelled: negative``),
        once ``labels.min_maturity`` of the positives are, the rest counted as 0."""
        if labels.unlabelled == "negative":
            return self.positives_in(labels.min_maturity)
        return self.matured_days


@dataclass(frozen=True)
class Options:
    """What to replay and how."""

    weeks: int = 12
    strategies: tuple[str, ...] = STRATEGIES
    window_weeks: int = WINDOW_WEEKS  # retraining: the most recent matured weeks fitted on
    delays: LabelDelays = LabelDelays()
    seed: int = 0
    out: Path = OUT
    batch_size: int | None = None  # records per /predict_batch (serving.max_batch_size)
    clients: int = 4  # concurrent requests
    keep_logs: bool = False  # copy each strategy's prediction log to <out>/<strategy>/


@dataclass
class Week:
    """One strategy's week: what was served, how it did, what the loop did."""

    strategy: str
    week: int
    served: str  # the champion's model tag during the week
    rows: int
    answered: int
    rejected: dict[str, int]  # status -> records refused
    roc_auc: float
    recall_at_review_rate: float
    cost_per_1k: float
    labels_arrived: int  # labels written by the week's end (all weeks so far)
    labels_this_week: int  # of them, for this week's own records
    verdict: str
    reasons: list[str]
    retrained: bool = False
    gate: str | None = None  # PASS | FAIL
    gate_failed: list[str] = field(default_factory=list)
    gate_week: int | None = None
    train_weeks: list[int] = field(default_factory=list)
    promoted: str | None = None  # the new champion's tag
    rolled_back: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Timelapse:
    """The replay's outcome."""

    weeks: list[Week]
    first_week: int
    changes: dict[str, int]  # injected change -> its onset week
    seconds: dict[str, float]  # phase -> total
    options: dict[str, Any]


# --- the weeks --------------------------------------------------------------------------


def week_start(settings: Settings, week: int) -> pd.Timestamp:
    """When a week starts (UTC; the simulator's times are read as UTC)."""
    return pd.Timestamp(settings.simulator.start_date, tz="UTC") + pd.Timedelta(weeks=week)


class Weeks:
    """The simulated weeks with their label arrival times, each made once."""

    def __init__(self, settings: Settings, delays: LabelDelays, seed: int) -> None:
        self.settings, self.delays, self.seed = settings, delays, seed
        self.first = settings.simulator.weeks  # the first week after the training data
        self._cache: dict[int, pd.DataFrame] = {}

    def __getitem__(self, week: int) -> pd.DataFrame:
        if week not in self._cache:
            from modelops.example.simulator import simulate_week

            frame = simulate_week(self.settings.simulator, week)
            schema = self.settings.data_schema
            times = pd.to_datetime(frame[schema.time_column]).dt.tz_localize("UTC")
            delay = self.delays.draw(frame[schema.target].to_numpy(), self.seed, week)
            frame["_at"] = times
            # the training data's weeks came labelled; a replayed week's labels come late,
            # and never for a negative when only positives are reported
            late = pd.to_timedelta(delay, unit="D") if week >= self.first else pd.Timedelta(0)
            arrives = (times + late).dt.floor("us")
            if week >= self.first and self.settings.monitoring.labels.unlabelled == "negative":
                arrives = arrives.where(frame[schema.target].to_numpy() == 1)
            frame["_arrives"] = arrives
            self._cache[week] = frame
        return self._cache[week]

    def costs(self, week: int) -> pd.DataFrame:
        """The week's cost columns as they really are, before an upstream change of units:
        the money a miss loses does not change with the units it is sent in."""
        from modelops.example.simulator import simulate_week

        frame, columns = self[week], self.settings.evaluation.costs.columns()
        change = self.settings.simulator.upstream_change
        if change.week is None or week < change.week or not set(columns) & set(change.scale):
            return frame[columns]
        unchanged = self.settings.simulator.model_copy(
            update={"upstream_change": change.model_copy(update={"week": None})}
        )
        return simulate_week(unchanged, week)[columns]


def matured(settings: Settings, options: Options, first: int, now: pd.Timestamp) -> list[int]:
    """The weeks whose labels are in at ``now``: the training data's own weeks, and each
    replayed week whose records are all older than LabelDelays.mature_after."""
    limit = now - pd.Timedelta(days=options.delays.mature_after(settings.monitoring.labels))
    return list(range(first)) + [
        w for w in range(first, first + options.weeks) if week_start(settings, w + 1) <= limit
    ]


# --- truth -------------------------------------------------------------------------------


def truth(
    model: Any, frame: pd.DataFrame, settings: Settings, costs: pd.DataFrame | None = None
) -> dict[str, float]:
    """ROC-AUC, recall at the action budget and cost per 1,000 on the simulator's labels
    (``costs``: the cost columns' true values, when the frame's are in other units)."""
    from modelops.training.evaluate import make_holdout, scored
    from modelops.training.metrics import point_estimates
    from modelops.training.scoring import score

    schema = settings.data_schema
    values = np.asarray(score(model, frame, schema), dtype=float)
    points = point_estimates(
        make_holdout(
            frame if costs is None else frame.assign(**costs), schema, settings.evaluation
        ),
        scored(values, settings.evaluation),
    )
    return {k: points[k] for k in ("roc_auc", "recall_at_review_rate", "cost_per_1k")}


# --- the service -------------------------------------------------------------------------


@contextmanager
def _environment(**variables: str | None) -> Iterator[None]:
    """Environment variables set (or removed, for None) for the duration."""
    before = {k: os.environ.get(k) for k in variables}
    for k, v in variables.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def send(
    client: Any, url: str, records: list[dict[str, Any]], plural: str, id_field: str
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Send records to /predict_batch: (request id, record id) of each answered one, and
    the refused records per status. A refused batch is resent without the records its
    field errors name, or split in halves when it names none."""
    answered: list[tuple[str, str]] = []
    refused: dict[str, int] = {}
    pending = [records]
    while pending:
        batch = pending.pop()
        reply = client.post(f"{url}/predict_batch", json={plural: batch}, timeout=120)
        if reply.status_code == 200:
            answered += [(a["request_id"], a[id_field]) for a in reply.json()]
            continue
        status = str(reply.status_code)
        if reply.status_code >= 500 or len(batch) == 1:
            refused[status] = refused.get(status, 0) + len(batch)
            continue
        named = set()
        if reply.headers.get("content-type", "").startswith("application/problem+json"):
            for error in reply.json().get("errors", []):
                found = INDEX.search(error.get("field", ""))
                if found and int(found.group(1)) < len(batch):
                    named.add(int(found.group(1)))
        if named:
            refused[status] = refused.get(status, 0) + len(named)
            rest = [r for i, r in enumerate(batch) if i not in named]
            if rest:
                pending.append(rest)
        else:
            half = len(batch) // 2
            pending += [batch[:half], batch[half:]]
    return answered, refused


class Service:
    """The local service of one strategy's copy, and its prediction log."""

    def __init__(self, root: Path, settings: Settings) -> None:
        from modelops.release import deploy
        from modelops.serving.contract import ApiNames
        from modelops.serving.predlog import make_engine

        self.root, self.settings = root, settings
        with _environment(MODELOPS_LOG_URL=None):
            self.running = deploy.start(root, settings, ENV)
        self.log_path = (root / deploy.RUNS / f"{ENV}.db").resolve()
        self.log_url = f"sqlite:///{self.log_path}"
        self.engine = make_engine(self.log_url)
        names = ApiNames.from_words(settings.words)
        self.plural, self.id_field = names.records, names.id_field
        self.logged = 0
        self.request_ids: dict[int, pd.Series] = {}  # week -> request id by record id

    def stop(self) -> None:
        from modelops.release import deploy

        self.engine.dispose()
        deploy.stop(self.root, ENV)

    def keep(self, path: Path) -> None:
        """A consistent copy of the log (SQLite's backup: the write-ahead log included)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        with (
            closing(sqlite3.connect(self.log_path)) as source,
            closing(sqlite3.connect(path)) as target,
        ):
            source.backup(target)

    def apply(self) -> str:
        """Apply the desired-state file now; the champion it serves."""
        from modelops.release import deploy

        return deploy.apply(self.running).champion

    def traffic(
        self, week: int, frame: pd.DataFrame, options: Options
    ) -> tuple[int, dict[str, int]]:
        """The week's records through /predict_batch; answered count and refusals. Each
        logged prediction is then moved to its record's time."""
        import httpx
        import sqlalchemy as sa

        from modelops.serving.contract import requests_from_frame
        from modelops.serving.predlog import PREDICTIONS

        schema = self.settings.data_schema
        records = requests_from_frame(frame, schema)
        size = options.batch_size or self.settings.serving.max_batch_size
        batches = [records[i : i + size] for i in range(0, len(records), size)]
        answered: list[tuple[str, str]] = []
        refused: dict[str, int] = {}
        with httpx.Client() as client, ThreadPoolExecutor(options.clients) as pool:
            for got, lost in pool.map(
                lambda b: send(client, self.running.url, b, self.plural, self.id_field), batches
            ):
                answered += got
                for status, n in lost.items():
                    refused[status] = refused.get(status, 0) + n
        self.logged += len(answered)
        self._wait_logged()
        when = dict(zip(frame[schema.id_column], frame["_at"], strict=True))
        update = (
            sa.update(PREDICTIONS)
            .where(PREDICTIONS.c.request_id == sa.bindparam("rid"))
            .values(created_at=sa.bindparam("at"))
        )
        with self.engine.begin() as connection:
            connection.execute(
                update,
                [{"rid": rid, "at": when[record].to_pydatetime()} for rid, record in answered],
            )
        ids = {record: rid for rid, record in answered}
        self.request_ids[week] = frame[schema.id_column].map(ids)
        return len(answered), refused

    def _wait_logged(self, timeout_s: float = 60) -> None:
        import sqlalchemy as sa

        from modelops.serving.predlog import PREDICTIONS

        deadline = time.monotonic() + timeout_s
        query = sa.select(sa.func.count()).select_from(PREDICTIONS)
        while time.monotonic() < deadline:
            with self.engine.connect() as connection:
                if connection.execute(query).scalar_one() >= self.logged:
                    return
            time.sleep(0.1)
        raise TimelapseError(f"the service logged fewer than {self.logged} predictions")

    def labels(self, weeks: Weeks, since: pd.Timestamp, now: pd.Timestamp) -> int:
        """Write the labels of the answered records arriving in (since, now], with their
        arrival times; how many."""
        import sqlalchemy as sa

        from modelops.serving.predlog import FEEDBACK

        schema = self.settings.data_schema
        rows = []
        for week, request_ids in self.request_ids.items():
            frame = weeks[week]
            due = frame[(frame["_arrives"] > since) & (frame["_arrives"] <= now)]
            rid = request_ids[due.index]
            due, rid = due[rid.notna()], rid[rid.notna()]
            rows += [
                {"request_id": r, "record_id": record, "label": int(label), "received_at": at}
                for r, record, label, at in zip(
                    rid, due[schema.id_column], due[schema.target],
                    [t.to_pydatetime() for t in due["_arrives"]], strict=True,
                )
            ]  # fmt: skip
        if rows:
            with self.engine.begin() as connection:
                connection.execute(sa.insert(FEEDBACK), rows)
        return len(rows)


# --- retraining and the gate -------------------------------------------------------------


@dataclass(frozen=True)
class Challenger:
    """A retrained model, its gate and what it was fitted and judged on."""

    model: Any
    train: pd.DataFrame
    gate_frame: pd.DataFrame
    gate_week: int
    train_weeks: list[int]
    verdict: dict[str, Any]
    thresholds: tuple[float, float]
    metrics: dict[str, dict[str, float]]


def labelled(frame: pd.DataFrame, now: pd.Timestamp, settings: Settings) -> pd.DataFrame:
    """The rows whose labels have arrived by ``now``; when only positives are reported,
    every row, a positive not reported yet counted as 0 (as the monitoring counts it)."""
    arrived = frame["_arrives"] <= now
    if settings.monitoring.labels.unlabelled == "negative":
        target = settings.data_schema.target
        return frame.assign(**{target: frame[target].where(arrived, 0)})
    return frame[arrived]


def retrain(
    settings: Settings,
    options: Options,
    weeks: Weeks,
    first: int,
    now: pd.Timestamp,
    champion: Any,
) -> Challenger | None:
    """Fit a challenger on the recent matured weeks and judge it against the champion on
    the latest matured week; None when no week is left to fit on."""
    from modelops.review.compare import CHALLENGER, CHAMPION, assemble
    from modelops.review.gates import Measured, verdict
    from modelops.training.evaluate import make_holdout, scored
    from modelops.training.metrics import Scored, bootstrap
    from modelops.training.scoring import score
    from modelops.training.train import build_model, fit

    schema = settings.data_schema
    ready = matured(settings, options, first, now)
    if len(ready) < 2:
        return None
    gate_week, fitted_weeks = ready[-1], ready[-1 - options.window_weeks : -1]
    train = pd.concat([labelled(weeks[w], now, settings) for w in fitted_weeks], ignore_index=True)
    gate_frame = labelled(weeks[gate_week], now, settings).reset_index(drop=True)
    model = fit(build_model(schema, settings.model), train, schema)
    evaluation, boot = settings.evaluation, settings.evaluation.bootstrap
    holdout = make_holdout(gate_frame, schema, evaluation)
    got = {
        name: scored(np.asarray(score(m, gate_frame, schema), dtype=float), evaluation)
        for name, m in ((CHALLENGER, model), (CHAMPION, champion))
    }
    result = bootstrap(
        holdout, got, n_resamples=boot.n_resamples, confidence=boot.confidence, seed=boot.seed
    )
    comparison = assemble(settings, result, got, holdout, {}, {}, None, {})
    measured = Measured(comparison=comparison, fresh=True)
    kinds = (settings.gates.floors, settings.gates.champion, settings.gates.calibration)
    gates = [g for kind in kinds for g in kind.judge(measured)]
    challenger_scores = got[CHALLENGER].score
    thresholds = (
        got[CHALLENGER].threshold,
        Scored.at_review_rate(challenger_scores, evaluation.decline_rate).threshold,
    )
    return Challenger(
        model,
        train,
        gate_frame,
        gate_week,
        list(fitted_weeks),
        verdict(gates),
        thresholds,
        comparison.summary["metrics"][CHALLENGER],
    )


def save_challenger(root: Path, settings: Settings, challenger: Challenger) -> str:
    """Make the challenger the copy's current model (models/, data/train.parquet) and
    save it to the model store; its tag."""
    from modelops.io import dump_model, load_model, read_json
    from modelops.serving import store
    from modelops.serving.scorer import reference_values
    from modelops.training.lineage import describe_part, file_md5

    schema = settings.data_schema
    model_path = root / paths.MODEL
    dump_model(challenger.model, model_path)
    columns = [c for c in challenger.train.columns if not c.startswith("_")]
    challenger.train[columns].to_parquet(root / paths.TRAIN)
    challenger.gate_frame[columns].to_parquet(root / paths.HOLDOUT)
    md5 = file_md5(model_path)
    lineage = read_json(root / paths.LINEAGE)
    name = settings.model.name
    review, decline = challenger.thresholds
    lineage.update(
        model_id=f"{name}-{md5[:12]}",
        model=lineage["model"] | {"md5": md5},
        decision=lineage["decision"] | {"threshold": review, "decline_threshold": decline},
        metrics=challenger.metrics,
        timelapse={"train_weeks": challenger.train_weeks, "gate_week": challenger.gate_week},
    )
    lineage["data"] = lineage["data"] | {
        "train": describe_part(challenger.train, root / paths.TRAIN, schema),
        "holdout": describe_part(challenger.gate_frame, root / paths.HOLDOUT, schema),
    }
    write_json(lineage, root / paths.LINEAGE)
    _write_profile(root, settings, challenger)
    model = load_model(model_path)
    reference = reference_values(challenger.train, schema, list(model.feature_names_in_))
    commit = git("rev-parse", "HEAD", cwd=root)
    return store.save(name, model_path, lineage, reference, commit, profile=root / paths.PROFILE)


def _write_profile(root: Path, settings: Settings, challenger: Challenger) -> None:
    """The challenger's reference profile for monitoring (models/profile.json): its
    training rows' features and its scores on the gate week, as the profile stage does."""
    from modelops.monitoring.profile import build_profile
    from modelops.training.scoring import score

    schema = settings.data_schema
    scores = pd.Series(np.asarray(score(challenger.model, challenger.gate_frame, schema)))
    built = build_profile(
        challenger.train, scores, schema, settings.monitoring.drift.bins, challenger.thresholds
    )
    built.save(root / paths.PROFILE)


def promote(root: Path, settings: Settings, service: Service, tag: str) -> tuple[str, bool]:
    """Write ``tag`` as the champion into the copy's desired-state file, commit it and let
    the service apply it; roll back (a revert commit) when the service refuses it. The
    champion served after, and whether it was rolled back."""
    from modelops.release.deploy import DeployError
    from modelops.release.policy import check
    from modelops.release.promote import rollback

    path = root / "deploy/environments" / f"{ENV}.yaml"
    state = yaml.safe_load(path.read_text())
    state["champion"] = tag
    text = yaml.safe_dump(state, sort_keys=False)
    check(root, settings, path, text)
    path.write_text(text)
    git("add", "-A", cwd=root)
    git("commit", "-qm", f"Promote {tag} to {ENV}", cwd=root)
    try:
        return service.apply(), False
    except DeployError:
        rollback(root, settings, ENV)
        return service.apply(), True


# --- one strategy ------------------------------------------------------------------------


def copy_project(source: Path, root: Path) -> None:
    """The files the loop reads, committed in a new repository at ``root``."""
    for relative in COPIED:
        if (source / relative).exists():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / relative, root / relative)
    environments = root / "deploy/environments"
    environments.mkdir(parents=True)
    (root / "data").mkdir(exist_ok=True)
    (root / ".gitignore").write_text("reports/\ndata/\n")
    with _environment(**IDENTITY):
        git("init", "-q", "-b", "main", cwd=root)
        git("add", "-A", cwd=root)
        git("commit", "-qm", "the project as the time-lapse starts", cwd=root)


def initial_state(root: Path, tag: str) -> None:
    """The copy serves ``tag`` alone."""
    path = root / "deploy/environments" / f"{ENV}.yaml"
    path.write_text(yaml.safe_dump({"champion": tag, "strategy": {"type": "single"},
                                    "automation": "partial"}, sort_keys=False))  # fmt: skip
    git("add", "-A", cwd=root)
    git("commit", "-qm", f"Serve {tag} in {ENV}", cwd=root)


def wants_retrain(strategy: str, level: str) -> bool:
    """Whether a strategy retrains after a week whose verdict is ``level``."""
    return strategy == "scheduled" or (strategy == "drift" and level == "retrain")


def replay(
    strategy: str,
    source: Path,
    settings: Settings,
    options: Options,
    weeks: Weeks,
    first: int,
    monitor: Check,
    progress: Callable[[str], None],
    started: float,
) -> list[Week]:
    """One strategy over every replayed week, in its own copy with its own service."""
    from modelops.io import load_model, read_json
    from modelops.serving import store
    from modelops.serving.scorer import reference_values

    out: list[Week] = []
    with tempfile.TemporaryDirectory(prefix=f"timelapse-{strategy}-") as folder:
        root = Path(folder) / "repo"
        root.mkdir()
        with _environment(**IDENTITY):
            copy_project(source, root)
            champion = load_model(root / paths.MODEL)
            lineage = read_json(root / paths.LINEAGE)
            train = pd.read_parquet(source / paths.TRAIN, columns=list(champion.feature_names_in_))
            reference = reference_values(
                train, settings.data_schema, list(champion.feature_names_in_)
            )
            commit = git("rev-parse", "HEAD", cwd=root)
            tag = store.save(settings.model.name, root / paths.MODEL, lineage, reference,
                             commit, profile=root / paths.PROFILE)  # fmt: skip
            initial_state(root, tag)
            service = Service(root, settings)
            try:
                for week in range(first, first + options.weeks):
                    result, champion, tag = _week(
                        strategy, week, root, settings, options, weeks, first, monitor,
                        service, champion, tag,
                    )  # fmt: skip
                    out.append(result)
                    progress(_line(result, options, first, time.perf_counter() - started))
            finally:
                if options.keep_logs:
                    service.keep(options.out / strategy / "predictions.db")
                service.stop()
    return out


def _week(
    strategy: str,
    week: int,
    root: Path,
    settings: Settings,
    options: Options,
    weeks: Weeks,
    first: int,
    monitor: Check,
    service: Service,
    champion: Any,
    tag: str,
) -> tuple[Week, Any, str]:
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[phase] = seconds.get(phase, 0.0) + now - clock
        clock = now

    frame = weeks[week]
    answered, refused = service.traffic(week, frame, options)
    lap("traffic")
    scores = truth(champion, frame, settings, weeks.costs(week))
    lap("truth")
    since, now = week_start(settings, week), week_start(settings, week + 1)
    service.labels(weeks, since, now)
    arrived = _count_labels(service)
    this_week = int(((frame["_arrives"] <= now) & service.request_ids[week].notna()).sum())
    lap("labels")
    report = options.out / strategy / f"week-{week}"
    verdict = _run_check(monitor, root, settings, service.log_url, now, report)
    lap("monitoring")
    result = Week(
        strategy, week, tag, len(frame), answered, refused,
        scores["roc_auc"], scores["recall_at_review_rate"], scores["cost_per_1k"],
        arrived, this_week, verdict.level, list(verdict.reasons),
    )  # fmt: skip
    if wants_retrain(strategy, verdict.level):
        challenger = retrain(settings, options, weeks, first, now, champion)
        if challenger is not None:
            result.retrained = True
            result.gate = challenger.verdict["verdict"]
            result.gate_failed = challenger.verdict["failed"]
            result.gate_week, result.train_weeks = challenger.gate_week, challenger.train_weeks
            if result.gate == "PASS":
                new = save_challenger(root, settings, challenger)
                if new != tag:  # the same data gives the same bytes: nothing to promote
                    served, result.rolled_back = promote(root, settings, service, new)
                    if served == new:
                        champion, tag, result.promoted = challenger.model, new, new
        lap("retraining")
    result.seconds = {k: round(v, 3) for k, v in seconds.items()}
    return result, champion, tag


def _count_labels(service: Service) -> int:
    import sqlalchemy as sa

    from modelops.serving.predlog import FEEDBACK

    with service.engine.connect() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(FEEDBACK)).scalar_one()
        )


def _run_check(
    monitor: Check, root: Path, settings: Settings, log_url: str, now: pd.Timestamp, out: Path
) -> Verdict:
    """The monitoring check of the copy's log at ``now``."""
    return monitor(root, settings, log_url, now=now.to_pydatetime(), out=out)


def _line(week: Week, options: Options, first: int, elapsed: float) -> str:
    loop = ""
    if week.retrained:
        loop = f" retrain {week.gate}" + (" promoted" if week.promoted else "")
        loop += " rolled back" if week.rolled_back else ""
    refused = sum(week.rejected.values())
    return (
        f"[{week.week - first + 1:>2}/{options.weeks}] week {week.week} {week.strategy:<9} "
        f"ROC-AUC {week.roc_auc:.3f} recall {week.recall_at_review_rate:.3f} "
        f"cost/1k {week.cost_per_1k:,.0f} refused {refused} verdict {week.verdict}{loop} "
        f"({' '.join(f'{k} {v:.1f}s' for k, v in week.seconds.items())}) elapsed {elapsed:.0f}s"
    )


# --- the whole replay --------------------------------------------------------------------


def run(
    root: Path,
    settings: Settings,
    options: Options = Options(),
    monitor: Check | None = None,
    progress: Callable[[str], None] = print,
) -> Timelapse:
    """Replay ``options.weeks`` weeks after the training data for each strategy; write
    the outputs into ``options.out``. ``root``: the project (read only)."""
    if settings.data.source != "simulator":
        raise TimelapseError("the time-lapse replays the simulator's weeks (data.source)")
    unknown = set(options.strategies) - set(STRATEGIES)
    if unknown:
        raise TimelapseError(f"unknown strategies {sorted(unknown)}; known: {STRATEGIES}")
    if not (root / paths.MODEL).exists():
        raise TimelapseError(f"no model at {root / paths.MODEL}: run `make repro` first")
    monitor = monitor or check.run
    first = settings.simulator.weeks
    weeks = Weeks(settings, options.delays, options.seed)
    started = time.perf_counter()
    results: list[Week] = []
    for strategy in options.strategies:
        results += replay(
            strategy, root, settings, options, weeks, first, monitor, progress, started
        )
    totals = {p: round(sum(w.seconds.get(p, 0.0) for w in results), 1) for p in PHASES}
    totals["total"] = round(time.perf_counter() - started, 1)
    changes = {
        name: week
        for name, week in (
            ("new_tactic", settings.simulator.new_tactic.week),
            ("upstream_change", settings.simulator.upstream_change.week),
        )
        if week is not None
    }
    options_json = asdict(options) | {"out": str(options.out)}
    outcome = Timelapse(results, first, changes, totals, options_json)
    write(outcome, options.out, settings)
    return outcome


# --- outputs -----------------------------------------------------------------------------


def frame_of(outcome: Timelapse) -> pd.DataFrame:
    """One row per strategy and week."""
    rows = []
    for w in outcome.weeks:
        row = asdict(w)
        row["rejected"] = sum(w.rejected.values())
        row["reasons"] = "; ".join(w.reasons)
        row["train_weeks"] = " ".join(map(str, w.train_weeks))
        row["gate_failed"] = " ".join(w.gate_failed)
        row.update({f"seconds_{k}": v for k, v in row.pop("seconds").items()})
        rows.append(row)
    return pd.DataFrame(rows)


def first_alarm(outcome: Timelapse, strategy: str, onset: int, level: str) -> int | None:
    """The first week from ``onset`` whose verdict reaches ``level`` (warn: warn or
    retrain) for the strategy."""
    levels = ("warn", "retrain") if level == "warn" else ("retrain",)
    for w in outcome.weeks:
        if w.strategy == strategy and w.week >= onset and w.verdict in levels:
            return w.week
    return None


def first_findings(outcome: Timelapse, strategy: str, onset: int) -> dict[str, int]:
    """Per detector (a reason's ``detector:`` prefix), the first week from ``onset`` it
    reported a finding for the strategy."""
    found: dict[str, int] = {}
    for w in outcome.weeks:
        if w.strategy == strategy and w.week >= onset:
            for reason in w.reasons:
                found.setdefault(reason.split(":", 1)[0].strip(), w.week)
    return found


def summary(outcome: Timelapse, settings: Settings) -> str:
    """The markdown summary."""
    table = frame_of(outcome)
    first, last = outcome.first_week, outcome.first_week + outcome.options["weeks"] - 1
    lines = [
        f"# Time-lapse: weeks {first}-{last} after the training data",
        "",
        f"Strategies on the same weeks; truth from the simulator's labels of each week's "
        f"traffic. Recall and cost at the action budget (review rate "
        f"{settings.evaluation.review_rate:g}). Retraining window: "
        f"{outcome.options['window_weeks']} matured weeks; labels: "
        f"{_delays_text(outcome, settings)}.",
        "",
        "| strategy | mean ROC-AUC | mean recall | mean cost/1k | retrains | promotions | "
        "rollbacks | refused records |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for strategy, part in table.groupby("strategy", sort=False):
        lines.append(
            f"| {strategy} | {part.roc_auc.mean():.4f} | {part.recall_at_review_rate.mean():.4f} "
            f"| {part.cost_per_1k.mean():,.0f} | {int(part.retrained.sum())} "
            f"| {int(part.promoted.notna().sum())} | {int(part.rolled_back.sum())} "
            f"| {int(part.rejected.sum()):,} |"
        )
    for name, onset in outcome.changes.items():
        if not first <= onset <= last:
            continue
        lines += ["", f"## {name.replace('_', ' ')} (week {onset})", ""]
        lines.append("| strategy | mean ROC-AUC before | mean ROC-AUC from onset | first warn | "
                     "first retrain verdict | weeks to alarm | its reasons | "
                     "first finding per detector (weeks after onset) |")  # fmt: skip
        lines.append("|---|---|---|---|---|---|---|---|")
        for strategy, part in table.groupby("strategy", sort=False):
            before, after = part[part.week < onset], part[part.week >= onset]
            warn = first_alarm(outcome, str(strategy), onset, "warn")
            alarm = first_alarm(outcome, str(strategy), onset, "retrain")
            delay = "none" if alarm is None else str(alarm - onset)
            why = "" if alarm is None else str(part[part.week == alarm].reasons.iloc[0])
            firsts = first_findings(outcome, str(strategy), onset)
            per_detector = ", ".join(f"{d} {w} ({w - onset})" for d, w in firsts.items()) or "-"
            lines.append(
                f"| {strategy} | {_mean(before.roc_auc)} | {_mean(after.roc_auc)} "
                f"| {warn if warn is not None else '-'} | {alarm if alarm is not None else '-'} "
                f"| {delay} | {why.replace('|', '/')} | {per_detector} |"
            )
    lines += ["", "## Where the time went", "", "| phase | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:,.1f} |" for k, v in outcome.seconds.items()]
    lines += [
        "",
        "Weeks to alarm: 0 means the check at the end of the onset week alarmed; its reasons "
        "say which detector, which may have alarmed for another cause (staleness, say).",
        "",
    ]
    return "\n".join(lines)


def _mean(values: pd.Series) -> str:
    return f"{values.mean():.4f}" if len(values) else "-"


def _delays_text(outcome: Timelapse, settings: Settings) -> str:
    d = outcome.options["delays"]
    positives = (
        f"positives after {d['positive_min_days']:g} days + lognormal (median "
        f"{d['positive_median_days']:g} days, log-SD {d['positive_sigma']:g})"
    )
    labels = settings.monitoring.labels
    if labels.unlabelled == "negative":
        return (
            f"{positives}, only positives reported (a week is in once "
            f"{labels.min_maturity:.0%} of them can be, the rest counted as 0)"
        )
    return f"{positives}; negatives after {d['negative_days']:g} days + uniform(0, " + (
        f"{d['negative_jitter_days']:g})"
    )


def plot(outcome: Timelapse, path: Path, settings: Settings) -> None:
    """Weekly ROC-AUC, recall at the budget and cost per strategy, the changes marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = frame_of(outcome)
    panels = (("roc_auc", "ROC-AUC"), ("recall_at_review_rate",
              f"recall at review rate {settings.evaluation.review_rate:g}"),
              ("cost_per_1k", "cost per 1,000"))  # fmt: skip
    figure, axes = plt.subplots(len(panels), 1, figsize=(9, 9), sharex=True)
    for axis, (column, title) in zip(axes, panels, strict=True):
        for strategy, part in table.groupby("strategy", sort=False):
            axis.plot(part.week, part[column], marker="o", label=str(strategy))
            promoted = part[part.promoted.notna()]
            axis.scatter(promoted.week, promoted[column], marker="^", s=60, color="black", zorder=3)
        for name, onset in outcome.changes.items():
            axis.axvline(onset - 0.5, color="grey", linestyle="--", linewidth=1)
            if column == panels[0][0]:
                axis.text(onset - 0.45, axis.get_ylim()[1], name.replace("_", " "),
                          va="top", fontsize=8, color="grey")  # fmt: skip
        axis.set_ylabel(title)
        axis.grid(alpha=0.3)
    axes[0].legend(title="strategy (▲ promoted at the week's end)")
    axes[-1].set_xlabel("week")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write(outcome: Timelapse, out: Path, settings: Settings) -> None:
    """weekly.csv, timelapse.json, summary.md and timelapse.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    frame_of(outcome).to_csv(out / "weekly.csv", index=False)
    write_json(
        {
            "first_week": outcome.first_week,
            "changes": outcome.changes,
            "seconds": outcome.seconds,
            "options": outcome.options,
            "weeks": [asdict(w) for w in outcome.weeks],
        },
        out / "timelapse.json",
    )
    (out / "summary.md").write_text(summary(outcome, settings))
    plot(outcome, out / "timelapse.png", settings)


def with_weeks(options: Options, weeks: int) -> Options:
    """The options for another number of weeks."""
    return replace(options, weeks=weeks)


if __name__ == "__main__":  # pragma: no cover - `modelops timelapse` runs this in a subprocess
    from modelops.monitoring.cli import subprocess_main

    sys.exit(subprocess_main(sys.argv[1:]))
