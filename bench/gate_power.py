"""Gate power: how often the whole merge verdict says FAIL for a challenger that is
truly as good as the champion (false alarms), one that is truly 2 ROC-AUC points worse
(power), and one that is miscalibrated; and which gates fire.

Each trial judges the verdict with the production code: a ``Comparison`` built as
``review.compare.compare`` builds it (one paired bootstrap with the params.yaml slices,
``slice_summary``, thresholds, the summary the gates read), the baselines' lift as the
evaluate stage computes it (``training.evaluate._lift`` on a bootstrap with the same
seed), then ``gates.judge(settings.gates, Measured(...))`` and ``gates.verdict``.

1. Train the models on the default training weeks (the default model, two models of
   the same recipe trained on two bootstrap resamples of the training rows, one without
   ``local_hour``, one with ``class_weight: balanced``, and one with other
   hyperparameters for the pool-only check of the old "equal" design).
2. A calibration pool: ``--pool`` fresh holdouts (other simulator seeds, the holdout
   weeks). The worse challengers get Gaussian logit noise whose sigma is bisected on the
   pool until their true ROC-AUC gap is -0.020. Then every condition's true gap on every
   gated metric (and slice) is measured on the pool.
3. Trials: each draws a fresh holdout (a new simulator seed), scores every model, draws
   fresh noise, runs one bootstrap of all models with the slices and one of the
   baselines (same resamples, reseeded per trial) and judges every condition's verdict.

Writes bench/results/gate_power.md and bench/results/gate_power.json (every trial).
Finished trials are appended to bench/results/gate_power.partial.jsonl as they come, so
an interrupted run resumes where it stopped (the file is removed at the end).

    .venv/bin/python bench/gate_power.py    # the committed figures, about 50 min on 2 cores
    .venv/bin/python bench/gate_power.py --trials 4 --pool 4 --results /tmp/gp  # a smoke run
    .venv/bin/python bench/gate_power.py --report-only  # rebuild the .md from the .json

Every seed is fixed, so a rerun reproduces every trial exactly (only timings change).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import binomtest
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from modelops import paths
from modelops.config import Settings, load_settings
from modelops.data.split import split
from modelops.example.simulator import simulate_week
from modelops.io import dump_model, write_json, write_parquet
from modelops.metric_registry import METRICS as REGISTRY
from modelops.review.check import fixed_thresholds
from modelops.review.compare import (
    CHALLENGER,
    CHAMPION,
    Comparison,
    assemble,
    latency_ms,
    slice_groups,
    unseen_rows,
)
from modelops.review.gates import Gate, GateSettings, Measured, judge, verdict
from modelops.review.integrity import measure as integrity_measure
from modelops.schema import Role, Schema
from modelops.training.evaluate import MODEL, _lift, make_holdout, scored
from modelops.training.metrics import (
    BootstrapResult,
    Holdout,
    Scored,
    bootstrap,
    in_slice,
    point_estimates,
)
from modelops.training.scoring import score
from modelops.training.train import build_baselines, build_model, fit
from pipeline_bench import machine

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
GAP = 0.020  # "2 ROC-AUC points below the champion"
MATCH = 0.0005  # a calibrated true gap must be this close to its target
POWER_TARGET = 0.95  # FAIL at least this share of the worse challengers
FALSE_ALARM_TARGET = 0.05  # FAIL at most this share of the equal challengers
TRIAL_SEED = 1000  # trial i simulates with seed TRIAL_SEED + i
POOL_SEED = 5000  # calibration holdout j simulates with seed POOL_SEED + j
NOISE_STREAM = 99  # noise for condition k on seed s: default_rng([s, NOISE_STREAM, k, ...])
POOL_NOISE_DRAWS = 8  # noise draws per calibration holdout (the ROC-AUC bisection)
RESAMPLE_STREAM = 77  # training-row bootstrap r: default_rng([RESAMPLE_STREAM, r])
# the sensitivity tables: the gate's rule at other tolerances, from the same trials
CHAMPION_TOLERANCES: Final = {
    "roc_auc": (0.0025, 0.005, 0.0075, 0.01),
    "average_precision": (0.01, 0.02, 0.03, 0.04),
    "recall_at_review_rate": (0.02, 0.03, 0.04, 0.05),
    "cost_per_1k": (25.0, 50.0, 75.0, 100.0),
    "log_loss": (0.0025, 0.005, 0.0075, 0.01),
    "brier": (0.0005, 0.001, 0.0015, 0.002),
}
SLICE_TOLERANCES: Final = (0.02, 0.03, 0.04, 0.05)
PARTIAL = "gate_power.partial.jsonl"


@dataclass(frozen=True)
class BaseSpec:
    """A model trained on the default training rows: params overrides, features dropped,
    or a bootstrap resample of the rows (seed ``resample``)."""

    name: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    resample: int | None = None
    in_trials: bool = True  # False: only measured on the calibration pool


DEFAULT = "default"
BASES = (
    BaseSpec(DEFAULT, "the default model (params.yaml), on all training rows"),
    BaseSpec("resample_1", "the default recipe on bootstrap resample 1 of the rows", resample=1),
    BaseSpec("resample_2", "the default recipe on bootstrap resample 2 of the rows", resample=2),
    BaseSpec("no_local_hour", "the default model trained without local_hour", drop=("local_hour",)),
    BaseSpec("balanced", "the default model with class_weight: balanced",
             params={"class_weight": "balanced"}),
    BaseSpec("leaf15", "max_leaf_nodes 15 instead of 31", params={"max_leaf_nodes": 15},
             in_trials=False),
)  # fmt: skip
BASE = {b.name: b for b in BASES}


@dataclass(frozen=True)
class Condition:
    """A challenger against a champion; ``gap`` set: noise on the challenger fixes its
    true ROC-AUC gap at that value."""

    name: str
    champion: str  # a BaseSpec name
    challenger: str  # a BaseSpec name
    description: str
    gap: float | None = None
    target: str | None = None  # "pass": FAIL at most 5 %; "fail": FAIL at least 95 %
    in_trials: bool = True


CONDITIONS = (
    Condition("equal", "resample_1", "resample_2",
              "same recipe, another bootstrap resample of the training rows", target="pass"),
    Condition("worse_no_local_hour", DEFAULT, "no_local_hour",
              "missing local_hour, plus noise to -0.020", gap=-GAP, target="fail"),
    Condition("worse_noise_only", DEFAULT, DEFAULT,
              "the default model plus noise to -0.020", gap=-GAP, target="fail"),
    Condition("miscalibrated", DEFAULT, "balanced", "class_weight: balanced"),
    Condition("equal_by_noise", DEFAULT, "leaf15",
              "old design: other hyperparameters, noise to equal ROC-AUC", gap=0.0,
              in_trials=False),
)  # fmt: skip


def model_key(c: Condition, side: str) -> str:
    """The name of a condition's champion or challenger in the shared bootstrap."""
    if side == CHAMPION:
        return c.champion
    return f"{c.name}:noisy" if c.gap is not None else c.challenger


# ---------------------------------------------------------------- data and models


def holdout_weeks(settings: Settings) -> range:
    """The weeks the time split puts in the holdout (the latest ones)."""
    weeks = settings.simulator.weeks
    return range(weeks - settings.split.holdout_weeks, weeks)


def simulate_holdout(settings: Settings, seed: int) -> pd.DataFrame:
    """A fresh holdout: the holdout weeks of the default simulator with another seed.
    Week w depends only on (seed, w), so the earlier weeks need not be simulated."""
    sim = settings.simulator.model_copy(update={"seed": seed})
    return pd.concat([simulate_week(sim, w) for w in holdout_weeks(settings)], ignore_index=True)


def schema_without(schema: Schema, drop: tuple[str, ...]) -> Schema:
    """The schema with some features set to role ``ignore``."""
    columns = {
        name: spec.model_copy(update={"role": Role.IGNORE}) if name in drop else spec
        for name, spec in schema.columns.items()
    }
    return schema.model_copy(update={"columns": columns})


def default_data(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The default example's (train, holdout): all weeks of the default seed, time split."""
    weeks = [simulate_week(settings.simulator, w) for w in range(settings.simulator.weeks)]
    return split(pd.concat(weeks, ignore_index=True), settings.data_schema, settings.split)


def clipped_logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of probabilities, finite at 0 and 1."""
    return np.asarray(logit(np.clip(p, 1e-12, 1 - 1e-12)))


def noise(seed: int, index: int, size: int, *draw: int) -> np.ndarray:
    """Standard normal noise for condition ``index`` on the holdout simulated with
    ``seed`` (pool holdouts take several draws)."""
    return np.random.default_rng([seed, NOISE_STREAM, index, *draw]).standard_normal(size)


# ---------------------------------------------------------------- worker processes

_WORKER: dict[str, Any] = {}


def init_worker(settings: Settings, shared: dict[str, Any]) -> None:
    """Give a worker process the settings and what the phase needs; one thread each."""
    threadpool_limits(1)
    _WORKER.clear()
    _WORKER.update(shared, settings=settings)


def fit_base(spec: BaseSpec) -> tuple[str, Pipeline, Schema, float]:
    """Fit one base model on the default training weeks (worker)."""
    started = time.perf_counter()
    settings: Settings = _WORKER["settings"]
    if "train" not in _WORKER:
        _WORKER["train"] = default_data(settings)[0]
    train = _WORKER["train"]
    if spec.resample is not None:
        rng = np.random.default_rng([RESAMPLE_STREAM, spec.resample])
        train = train.iloc[np.sort(rng.integers(0, len(train), len(train)))]
    params = settings.model.params | spec.params
    model_settings = settings.model.model_copy(update={"params": params})
    schema = schema_without(settings.data_schema, spec.drop)
    model = fit(build_model(schema, model_settings), train, schema)
    return spec.name, model, schema, time.perf_counter() - started


def fit_baselines() -> tuple[dict[str, Any], float]:
    """The dummy and logistic baselines on the default training rows, as the baselines
    stage fits them (worker)."""
    started = time.perf_counter()
    settings: Settings = _WORKER["settings"]
    schema = settings.data_schema
    train = _WORKER.get("train")
    if train is None:
        train = _WORKER["train"] = default_data(settings)[0]
    baselines = build_baselines(schema, settings.baselines)
    for model in baselines.values():
        fit(model, train, schema)
    return baselines, time.perf_counter() - started


def probabilities(frame: pd.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
    """Each named model's (bases and baselines) fraud probabilities on ``frame``."""
    fitted, baselines = _WORKER["fitted"], _WORKER["baselines"]
    schema = _WORKER["settings"].data_schema
    out = {}
    for name in names:
        model, model_schema = fitted[name] if name in fitted else (baselines[name], schema)
        out[name] = np.asarray(score(model, frame, model_schema), dtype=float)
    return out


@dataclass
class PoolHoldout:
    """One calibration holdout: what the bisection and the pool metrics need."""

    seed: int
    holdout: Holdout
    groups: dict[str, np.ndarray]
    probs: dict[str, np.ndarray]


def pool_holdout(seed: int) -> PoolHoldout:
    """One calibration holdout scored by every model (worker)."""
    settings: Settings = _WORKER["settings"]
    frame = simulate_holdout(settings, seed)
    names = [b.name for b in BASES] + list(_WORKER["baselines"])
    return PoolHoldout(
        seed,
        make_holdout(frame, settings.data_schema, settings.evaluation),
        slice_groups(frame, settings),
        probabilities(frame, names),
    )


def condition_scores(
    c: Condition, index: int, sigma: float, seed: int, probs: dict[str, np.ndarray], *draw: int
) -> np.ndarray:
    """A condition's challenger probabilities: the base's, plus its logit noise."""
    p = probs[c.challenger]
    if c.gap is None:
        return p
    return np.asarray(expit(clipped_logit(p) + sigma * noise(seed, index, p.size, *draw)))


def pool_metrics(entry: PoolHoldout, sigmas: dict[str, float]) -> dict[str, Any]:
    """Point estimates of every metric (and the slice metric per slice) of each
    condition's champion and challenger, and of the baselines, on one pool holdout
    (worker). Noisy challengers take noise draw 0."""
    settings: Settings = _WORKER["settings"]
    ev, metric = settings.evaluation, settings.gates.slices.metric
    out: dict[str, Any] = {}

    def measure(values: np.ndarray) -> dict[str, Any]:
        s = scored(values, ev)
        slices = {}
        for key, mask in entry.groups.items():
            part = entry.holdout.subset(mask)
            if 0 < part.y.sum() < part.y.size:
                slices[key] = point_estimates(part, s.subset(mask))[metric]
        return {"metrics": point_estimates(entry.holdout, s), "slices": slices}

    for index, c in enumerate(CONDITIONS):
        values = condition_scores(c, index, sigmas.get(c.name, 0.0), entry.seed, entry.probs, 0)
        out[f"{c.name}:{CHALLENGER}"] = measure(values)
        if c.champion not in out:
            out[c.champion] = measure(entry.probs[c.champion])
    for name in _WORKER["baselines"]:
        out[name] = {"metrics": point_estimates(entry.holdout, scored(entry.probs[name], ev))}
    out["positives"] = {k: int(entry.holdout.y[m].sum()) for k, m in entry.groups.items()}
    return out


def restrict(result: BootstrapResult, names: dict[str, str], slices: list[str]) -> BootstrapResult:
    """The bootstrap of some models only, renamed (new name -> name in ``result``): the
    same numbers ``bootstrap`` gives for those models alone, since every model is scored
    on the same resamples independently (checked on trial 0)."""
    points, draws = {}, {}
    for new, old in names.items():
        for key in [None, *slices]:
            src = old if key is None else in_slice(old, key)
            if src in result.points:
                dst = new if key is None else in_slice(new, key)
                points[dst], draws[dst] = result.points[src], result.draws[src]
    return BootstrapResult(points, draws, result.confidence)


def comparison(
    result: BootstrapResult,
    got: dict[str, Scored],
    holdout: Holdout,
    groups: dict[str, np.ndarray],
    budgets: dict[str, dict[str, float]],
    note: str | None,
) -> Comparison:
    """The Comparison of challenger and champion, assembled as compare() does (compare()
    itself reads the pipeline's files and scores the champion; a trial works in memory)."""
    source = {"status": "fetched", "reason": "gate_power: trained in the benchmark"}
    return assemble(_WORKER["settings"], result, got, holdout, groups, budgets, note, source)


def compact(gate: Gate) -> list[Any]:
    """A judged gate as [status, value, ci_low, ci_high] (rounded)."""
    r = [None if v is None else round(v, 6) for v in (gate.value, gate.ci_low, gate.ci_high)]
    return [gate.status, *r]


@dataclass
class Trial:
    """One trial's holdout and bootstraps, shared by every condition."""

    holdout: Holdout
    groups: dict[str, np.ndarray]
    note: str | None
    got: dict[str, Scored]  # every condition's champion and challenger, by model_key
    baselines: dict[str, Scored]
    result: BootstrapResult  # got, with the slices
    base_result: BootstrapResult  # the baselines, same resamples
    seed: int  # the bootstrap's


def run_bootstrap(
    holdout: Holdout, models: dict[str, Scored], seed: int, slices: dict[str, np.ndarray] | None
) -> BootstrapResult:
    """``metrics.bootstrap`` with the params.yaml settings (and the slices, if any)."""
    boot = _WORKER["settings"].evaluation.bootstrap
    return bootstrap(
        holdout, models, n_resamples=boot.n_resamples, confidence=boot.confidence, seed=seed,
        slices=slices,
    )  # fmt: skip


def judge_condition(
    c: Condition, trial: Trial
) -> tuple[dict[str, Any], BootstrapResult, BootstrapResult]:
    """A condition's whole verdict; its pair's bootstrap and its lift bootstrap."""
    settings: Settings = _WORKER["settings"]
    budgets: dict[str, dict[str, float]] = _WORKER["budgets"]
    pair = {CHALLENGER: model_key(c, CHALLENGER), CHAMPION: model_key(c, CHAMPION)}
    pair_result = restrict(trial.result, pair, list(trial.groups))
    comp = comparison(
        pair_result,
        {side: trial.got[name] for side, name in pair.items()},
        trial.holdout,
        trial.groups,
        {CHALLENGER: budgets[c.challenger], CHAMPION: budgets[c.champion]},
        trial.note,
    )
    # the evaluate stage's bootstrap: the model and the baselines on the same resamples
    result, base = trial.result, trial.base_result
    lift_result = BootstrapResult(
        {MODEL: result.points[pair[CHALLENGER]], **base.points},
        {MODEL: result.draws[pair[CHALLENGER]], **base.draws},
        result.confidence,
    )
    lift = {name: {"lift": _lift(lift_result, name)} for name in trial.baselines}
    measured = Measured(
        fresh=True, comparison=comp, baselines=lift, fixed_thresholds=_WORKER["fixed"]
    )
    gates = judge(settings.gates, measured)
    decision = verdict(gates)
    slice_fails = {
        f"{tol:g}": sum(
            g.status == "fail"
            for g in settings.gates.slices.model_copy(update={"tolerance": tol}).judge(measured)
        )
        for tol in SLICE_TOLERANCES
    }
    record = {
        "verdict": decision["verdict"],
        "failed": decision["failed"],
        "gates": {g.name: compact(g) for g in gates if g.status != "skipped"},
        "skipped": decision["skipped"],
        "slice_fails_by_tolerance": slice_fails,
    }
    return record, pair_result, lift_result


def check_shared(c: Condition, trial: Trial, pair_result: BootstrapResult,
                 lift_result: BootstrapResult) -> None:  # fmt: skip
    """The shared bootstrap's share equals production's separate bootstraps: of just the
    pair with the slices (as compare) and of the challenger with the baselines (as
    evaluate), number for number."""
    pair = {CHALLENGER: model_key(c, CHALLENGER), CHAMPION: model_key(c, CHAMPION)}
    alone = run_bootstrap(
        trial.holdout, {s: trial.got[n] for s, n in pair.items()}, trial.seed, trial.groups
    )
    evaluated = run_bootstrap(
        trial.holdout, {MODEL: trial.got[pair[CHALLENGER]], **trial.baselines}, trial.seed, None
    )
    for mine, theirs in ((pair_result, alone), (lift_result, evaluated)):
        assert mine.points == theirs.points, c.name
        assert mine.draws.keys() == theirs.draws.keys(), c.name
        for name, metrics in theirs.draws.items():
            for k, v in metrics.items():
                assert np.array_equal(mine.draws[name][k], v, equal_nan=True), (name, k)


def run_trial(index: int) -> dict[str, Any]:
    """One reseeded trial: fresh holdout, fresh noise, the shared bootstraps, and each
    condition's whole verdict."""
    started = time.perf_counter()
    settings: Settings = _WORKER["settings"]
    schema, ev = settings.data_schema, settings.evaluation
    sigmas: dict[str, float] = _WORKER["sigmas"]
    seed, bootstrap_seed = TRIAL_SEED + index, ev.bootstrap.seed + index
    conditions = [(i, c) for i, c in enumerate(CONDITIONS) if c.in_trials]
    seconds: dict[str, float] = {}

    def lap(phase: str, since: float) -> float:
        now = time.perf_counter()
        seconds[phase] = round(now - since, 2)
        return now

    frame = simulate_holdout(settings, seed)
    keep, note = unseen_rows(frame, schema, _WORKER["lineages"])
    frame = frame[keep].reset_index(drop=True)
    t = lap("simulate", started)
    bases = sorted({b for _, c in conditions for b in (c.champion, c.challenger)})
    probs = probabilities(frame, bases + list(_WORKER["baselines"]))
    got: dict[str, Scored] = {}  # each condition's two models, once
    for i, c in conditions:
        got[c.champion] = scored(probs[c.champion], ev)
        values = condition_scores(c, i, sigmas.get(c.name, 0.0), seed, probs)
        got[model_key(c, CHALLENGER)] = scored(values, ev)
    baselines = {name: scored(probs[name], ev) for name in _WORKER["baselines"]}
    t = lap("score", t)
    holdout = make_holdout(frame, schema, ev)
    groups = slice_groups(frame, settings)
    empty = BootstrapResult({}, {}, ev.bootstrap.confidence)
    trial = Trial(holdout, groups, note, got, baselines, empty, empty, bootstrap_seed)
    trial.result = run_bootstrap(holdout, got, bootstrap_seed, groups)
    t = lap("bootstrap", t)
    trial.base_result = run_bootstrap(holdout, baselines, bootstrap_seed, None)
    t = lap("bootstrap_baselines", t)

    record: dict[str, Any] = {
        "trial": index,
        "simulator_seed": seed,
        "bootstrap_seed": bootstrap_seed,
        "rows": int(holdout.y.size),
        "positives": int(holdout.y.sum()),
        "default_auc": round(trial.result.points[DEFAULT]["roc_auc"], 6),
        "conditions": {},
    }
    checks = []
    for _, c in conditions:
        record["conditions"][c.name], pair_result, lift_result = judge_condition(c, trial)
        checks.append((c, pair_result, lift_result))
    t = lap("judge", t)
    if index == 0:
        for c, pair_result, lift_result in checks:
            check_shared(c, trial, pair_result, lift_result)
        record["checked_against_separate_bootstraps"] = len(checks)
        t = lap("check", t)
    seconds["total"] = round(sum(v for k, v in seconds.items() if k != "check"), 2)
    record["seconds"] = seconds
    return record


# ---------------------------------------------------------------- calibration


def auc(y: np.ndarray, values: np.ndarray) -> float:
    """ROC-AUC from average ranks (ties count half), ten times faster than scikit-learn's
    on a holdout; the bisection below needs thousands of them."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new_run = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], ordered.size]
    rank = ((starts + ends + 1) / 2)[np.cumsum(new_run) - 1]  # 1-based average rank
    positive = y[order] == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((rank[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibrate(index: int, c: Condition, pool: list[PoolHoldout]) -> dict[str, Any]:
    """The logit-noise sigma that puts the challenger's true ROC-AUC gap at ``c.gap`` on
    the pool. Each pool holdout gets POOL_NOISE_DRAWS noise draws, fixed while sigma is
    bisected, so the gap moves smoothly with sigma."""
    assert c.gap is not None
    ys = [e.holdout.y for e in pool]
    champ = np.array([auc(y, e.probs[c.champion]) for y, e in zip(ys, pool, strict=True)])
    base = np.array([auc(y, e.probs[c.challenger]) for y, e in zip(ys, pool, strict=True)])
    base_gap = float((base - champ).mean())
    if base_gap < c.gap:
        raise SystemExit(f"{c.name}: the challenger is already {base_gap:+.4f} (< {c.gap})")
    logits = [clipped_logit(e.probs[c.challenger]) for e in pool]
    noises = [
        [noise(e.seed, index, e.holdout.y.size, d) for d in range(POOL_NOISE_DRAWS)] for e in pool
    ]

    def gaps(sigma: float) -> np.ndarray:
        """The gap on each pool holdout, averaged over its noise draws."""
        aucs = np.array([
            np.mean([auc(y, z0 + sigma * z) for z in zs])
            for y, z0, zs in zip(ys, logits, noises, strict=True)
        ])  # fmt: skip
        return np.asarray(aucs - champ)

    low, high = 0.0, 0.25
    while gaps(high).mean() > c.gap:
        low, high = high, 2 * high
    while high - low > 1e-4:
        mid = (low + high) / 2
        low, high = (mid, high) if gaps(mid).mean() > c.gap else (low, mid)
    sigma = (low + high) / 2
    g = gaps(sigma)
    if abs(g.mean() - c.gap) > MATCH:
        raise SystemExit(f"{c.name}: calibrated gap {g.mean():+.4f} misses {c.gap}")
    return {
        "sigma": sigma,
        "base_gap": base_gap,
        "auc_gap": float(g.mean()),
        "auc_gap_se": float(g.std(ddof=1) / np.sqrt(g.size)),
    }


def mean_se(values: list[float]) -> dict[str, float]:
    """Mean over the pool holdouts with its standard error."""
    a = np.array(values, dtype=float)
    return {"mean": float(a.mean()), "se": float(a.std(ddof=1) / np.sqrt(a.size))}


def true_gaps(per_holdout: list[dict[str, Any]], gates: GateSettings) -> dict[str, Any]:
    """Each condition's true value on every gated metric, from the pool: the improvement
    (challenger minus champion, signed so that positive is better) on the champion,
    calibration and slice metrics, the challenger's value for the floors, and its lift
    over each baseline; mean over the pool holdouts ± standard error."""

    def better(metric: str, ours: float, theirs: float) -> float:
        d = ours - theirs
        return d if REGISTRY[metric].higher_is_better else -d

    out: dict[str, Any] = {}
    for c in CONDITIONS:
        chal, champ = f"{c.name}:{CHALLENGER}", c.champion
        entry: dict[str, Any] = {"champion": {}, "calibration": {}, "floors": {}, "baselines": {}}
        for section, metrics in (
            ("champion", gates.champion.limits),
            ("calibration", ("log_loss", "brier")),
        ):
            for m in metrics:
                entry[section][m] = mean_se([
                    better(m, h[chal]["metrics"][m], h[champ]["metrics"][m]) for h in per_holdout
                ])  # fmt: skip
        for m in gates.floors.limits:
            entry["floors"][m] = mean_se([h[chal]["metrics"][m] for h in per_holdout])
        for name in ("dummy", "logistic"):
            for m in gates.baselines.limits:
                entry["baselines"][f"{name}:{m}"] = mean_se([
                    better(m, h[chal]["metrics"][m], h[name]["metrics"][m]) for h in per_holdout
                ])  # fmt: skip
        keys = sorted({k for h in per_holdout for k in h[chal]["slices"]})
        entry["slices"] = {
            k: mean_se([h[chal]["slices"][k] - h[champ]["slices"][k] for h in per_holdout])
            | {"positives": float(np.mean([h["positives"][k] for h in per_holdout]))}
            for k in keys
        }
        entry["challenger_auc"] = mean_se([h[chal]["metrics"]["roc_auc"] for h in per_holdout])
        entry["champion_auc"] = mean_se([h[champ]["metrics"]["roc_auc"] for h in per_holdout])
        out[c.name] = entry
    return out


# ---------------------------------------------------------------- deterministic gates


def integrity_cases(settings: Settings) -> dict[str, Any]:
    """The integrity gates on the default example's split as it is, with a silent row
    filter (the train record says 90 % of the train rows reached fit, as rehearsal case
    e's code change records it) and with an off-by-one split (the first holdout week
    also in train, as in case f). Needs `make repro`'s data/ and metrics/ files."""
    if not (REPO / paths.TRAIN).exists():
        return {"status": "not measured: run `make repro` first"}
    schema = settings.data_schema
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in ("as_is", "silent_row_filter", "off_by_one_split"):
            root = Path(tmp) / case
            train = pd.read_parquet(REPO / paths.TRAIN)
            holdout = pd.read_parquet(REPO / paths.HOLDOUT)
            record = json.loads((REPO / paths.TRAIN_RECORD).read_text())
            if case == "silent_row_filter":
                record["fitted_rows"] = round(0.9 * len(train))
            if case == "off_by_one_split":
                first = holdout[schema.time_column].min()
                week = holdout[holdout[schema.time_column] < first + pd.Timedelta(days=7)]
                train = pd.concat([train, week], ignore_index=True)
            write_parquet(train, root / paths.TRAIN)
            write_parquet(holdout, root / paths.HOLDOUT)
            write_json(record, root / paths.TRAIN_RECORD)
            write_json(json.loads((REPO / paths.VALIDATION_REPORT).read_text()),
                       root / paths.VALIDATION_REPORT)  # fmt: skip
            started = time.perf_counter()
            facts = integrity_measure(settings, root)
            gates = settings.gates.integrity.judge(Measured(integrity=facts))
            out[case] = {
                "seconds": round(time.perf_counter() - started, 2),
                "gates": {g.name: {"status": g.status, "reason": g.reason} for g in gates},
            }
    return out


def model_budgets(settings: Settings, fitted: dict[str, tuple[Pipeline, Schema]]) -> dict:
    """Each trial model's latency (``compare.latency_ms``, one thread) on the default
    holdout and its file size: they do not depend on the sampled holdout, so they are
    measured once, here, and every trial's Comparison carries them."""
    holdout = default_data(settings)[1]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, schema) in fitted.items():
            if not BASE[name].in_trials:
                continue
            path = dump_model(model, Path(tmp) / f"{name}.joblib")
            out[name] = latency_ms(model, holdout, schema, settings.gates.budgets.latency_calls)
            out[name]["size_mb"] = round(path.stat().st_size / 1e6, 3)
    return out


# ---------------------------------------------------------------- summary and report


def proportion(k: int, n: int) -> dict[str, float]:
    """A rate with its Clopper-Pearson (exact) 95 % interval."""
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return {"fails": k, "trials": n, "rate": k / n, "ci_low": ci.low, "ci_high": ci.high}


def summarise(trials: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """Per condition: the FAIL-verdict rate and its target, the fail rate of every gate
    that ever failed and of every gate kind, and the sensitivity to the tolerances."""
    kinds = list(settings.gates.kinds())
    champion_gates = {f"champion:{m}": m for m in settings.gates.champion.limits} | {
        f"calibration:{m}": m for m in ("log_loss", "brier")
    }
    out: dict[str, Any] = {}
    for c in CONDITIONS:
        if not c.in_trials:
            continue
        recs = [t["conditions"][c.name] for t in trials]
        n = len(recs)
        fails = sum(r["verdict"] == "FAIL" for r in recs)
        rate = proportion(fails, n)
        entry: dict[str, Any] = {**rate, "target": c.target}
        if c.target == "pass":
            entry["meets_target"] = rate["rate"] <= FALSE_ALARM_TARGET
            entry["interval_clears_target"] = rate["ci_high"] <= FALSE_ALARM_TARGET
        elif c.target == "fail":
            entry["meets_target"] = rate["rate"] >= POWER_TARGET
            entry["interval_clears_target"] = rate["ci_low"] >= POWER_TARGET
        names = sorted({g for r in recs for g in r["failed"]})
        entry["gate_fail_rates"] = {g: sum(g in r["failed"] for r in recs) / n for g in names}
        kind_of = {name: name.split(":")[0] for r in recs for name in r["gates"]}
        entry["kind_fail_rates"] = {
            k: sum(any(_kind(g) == k for g in r["failed"]) for r in recs) / n for k in kinds
        }
        entry["judged_kinds"] = sorted({_kind(g) for g in kind_of})
        entry["gates_judged"] = float(np.mean([len(r["gates"]) for r in recs]))
        entry["slices_judged"] = float(
            np.mean([sum(g.startswith("slice:") for g in r["gates"]) for r in recs])
        )
        entry["tolerance_fail_rates"] = {
            gate: {
                f"{tol:g}": sum(r["gates"][gate][3] < -tol for r in recs if gate in r["gates"]) / n
                for tol in CHAMPION_TOLERANCES[metric]
            }
            for gate, metric in champion_gates.items()
        }
        entry["slice_fail_rates_by_tolerance"] = {
            f"{tol:g}": sum(r["slice_fails_by_tolerance"][f"{tol:g}"] > 0 for r in recs) / n
            for tol in SLICE_TOLERANCES
        }
        auc_gate = [r["gates"]["champion:roc_auc"] for r in recs]
        entry["auc_difference"] = mean_se([g[1] for g in auc_gate])
        out[c.name] = entry
    return out


def _kind(gate: str) -> str:
    """A gate's section in params.yaml ``gates``, from its name."""
    head = gate.split(":", 1)[0]
    return {"floor": "floors", "baseline": "baselines", "slice": "slices", "budget": "budgets",
            "fixed_threshold": "calibration"}.get(head, head)  # fmt: skip


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


DIGITS: Final = {"cost_per_1k": 1, "log_loss": 5, "brier": 5}


def signed(e: dict[str, float], metric: str = "") -> str:
    """Mean ± standard error, with digits that suit the metric."""
    digits = DIGITS.get(metric, 4)
    return f"{e['mean']:+.{digits}f} ± {e['se']:.{digits}f}"


def gate_tables(summary: dict[str, Any], in_trials: list[Condition]) -> tuple[str, str, str]:
    """The header and rows of the per-gate and the per-kind fail rates."""
    # per gate: every gate that ever failed, then every kind
    failed_any = sorted({g for v in summary.values() for g in v["gate_fail_rates"]})
    head = " | ".join(c.name for c in in_trials)
    gate_rows = "\n".join(
        f"| `{g}` | " + " | ".join(pct(summary[c.name]["gate_fail_rates"].get(g, 0.0))
                                    for c in in_trials) + " |"
        for g in failed_any
    )  # fmt: skip
    kinds = list(next(iter(summary.values()))["kind_fail_rates"])
    kind_rows = "\n".join(
        f"| {k} | "
        + " | ".join(
            pct(summary[c.name]["kind_fail_rates"][k])
            if k in summary[c.name]["judged_kinds"]
            else "skipped"
            for c in in_trials
        )
        + " |"
        for k in kinds
    )
    return head, gate_rows, kind_rows


def gap_table(results: dict[str, Any]) -> tuple[str, str]:
    """The header and rows of the true gaps on the pool."""
    s, gaps = results["settings"], results["true_gaps"]
    # true gaps on the pool
    cols = list(CONDITIONS)
    gap_head = " | ".join(c.name for c in cols)
    limits = results["gate_settings"]
    gap_rows = []
    for section, label in (("champion", "champion"), ("calibration", "calibration")):
        for m in gaps[cols[0].name][section]:
            tol = limits[section][m]
            gap_rows.append(
                f"| {label}:{m} (improvement) | ≥ -{tol:g} | "
                + " | ".join(signed(gaps[c.name][section][m], m) for c in cols)
                + " |"
            )
    for m in gaps[cols[0].name]["floors"]:
        gap_rows.append(
            f"| floor:{m} (challenger's value) | ≥ {limits['floors'][m]:g} | "
            + " | ".join(signed(gaps[c.name]["floors"][m]).lstrip("+") for c in cols)
            + " |"
        )
    for key in gaps[cols[0].name]["baselines"]:
        metric = key.split(":")[1]
        gap_rows.append(
            f"| baseline:{key} (lift) | ≥ {limits['baselines'][metric]:g} (lower bound) | "
            + " | ".join(signed(gaps[c.name]["baselines"][key]) for c in cols)
            + " |"
        )
    slice_keys = list(gaps[cols[0].name]["slices"])
    for key in slice_keys:
        pos = gaps[cols[0].name]["slices"][key]["positives"]
        judged = "" if pos >= s["slice_min_positives"] else " (not judged: < 50 positives)"
        gap_rows.append(
            f"| slice:{key} ({pos:.0f} positives){judged} | ≥ -{limits['slices']['tolerance']:g}"
            " | " + " | ".join(signed(gaps[c.name]["slices"][key]) for c in cols) + " |"
        )
    gap_table = "\n".join(gap_rows)
    return gap_head, gap_table


def tolerance_table(summary: dict[str, Any], in_trials: list[Condition]) -> str:
    """Rows of the fail rates at other tolerances (those that ever fail)."""
    tol_rows = []
    for c in in_trials:
        for gate, rates in summary[c.name]["tolerance_fail_rates"].items():
            if not any(rates.values()):
                continue
            tol_rows.append(
                f"| {c.name} | `{gate}` | "
                + " | ".join(f"{t}: {pct(r)}" for t, r in rates.items())
                + " |"
            )
        rates = summary[c.name]["slice_fail_rates_by_tolerance"]
        if any(rates.values()):
            tol_rows.append(
                f"| {c.name} | any `slice:` | "
                + " | ".join(f"{t}: {pct(r)}" for t, r in rates.items())
                + " |"
            )
    return "\n".join(tol_rows) or "| - | no gate failed | | | | |"


def integrity_table(integ: dict[str, Any]) -> tuple[str, str, str, str]:
    """Header, separator, rows and failure reasons of the deterministic integrity cases."""
    integ_rows = "\n".join(
        f"| {case} | "
        + " | ".join(integ[case]["gates"][g]["status"].upper() for g in integ["as_is"]["gates"])
        + f" | {integ[case]['seconds']:.2f} s |"
        for case in ("as_is", "silent_row_filter", "off_by_one_split")
        if case in integ
    )
    integ_head = " | ".join(f"`{g}`" for g in integ.get("as_is", {}).get("gates", {}))
    reasons = "\n".join(
        f"- {case}: " + "; ".join(
            f"`{g}`: {r['reason']}" for g, r in integ[case]["gates"].items()
            if r["status"] == "fail"
        )
        for case in ("silent_row_filter", "off_by_one_split") if case in integ
    )  # fmt: skip
    integ_sep = "---|" * len(integ.get("as_is", {}).get("gates", {}))
    return integ_head, integ_sep, integ_rows, reasons


def reading_lines(summary: dict[str, Any], gaps: dict[str, Any], limits: dict[str, Any]) -> str:
    """What carries each verdict (from the per-gate rates), and what the noise does to
    calibration (from the pool)."""
    lines = []
    for name, v in summary.items():
        rates = sorted(v["gate_fail_rates"].items(), key=lambda kv: -kv[1])
        fired = ", ".join(f"`{g}` {pct(r)}" for g, r in rates) or "no gate, in any trial"
        lines.append(f"- {name}: FAIL {pct(v['rate'])}; gates that failed: {fired}.")
    ll, brier = limits["calibration"]["log_loss"], limits["calibration"]["brier"]
    noisy = ", ".join(
        f"{name} {signed(gaps[name]['calibration']['log_loss'], 'log_loss')} "
        f"(Brier {signed(gaps[name]['calibration']['brier'], 'brier')})"
        for name in gaps
        if any(c.name == name and c.gap is not None for c in CONDITIONS)
    )
    lines.append(
        f"- Logit noise and calibration (pool, improvement in log loss; tolerances {ll:g} and "
        f"{brier:g}): {noisy}. Calibration gates failed in "
        + ", ".join(
            f"{pct(v['kind_fail_rates']['calibration'])} of the {name} trials"
            for name, v in summary.items()
            if name.startswith("worse")
        )
        + "."
    )
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    """The Markdown results file."""
    s, mach, timing = results["settings"], results["machine"], results["timing"]
    summary, gaps, trials = results["summary"], results["true_gaps"], results["trials"]
    calibration, d = results["calibration"], results["default_holdout"]
    n = len(trials)
    in_trials = [c for c in CONDITIONS if c.in_trials]
    verdict_ok = all(v.get("meets_target", True) for v in summary.values())
    load = (
        f" Load average (1 min) at the start {timing['load_average_1min_start']}, at the end "
        f"{timing['load_average_1min_end']}."
    )

    def target_text(v: dict[str, Any]) -> str:
        if v["target"] is None:
            return "- | -"
        sign = "≤" if v["target"] == "pass" else "≥"
        goal = FALSE_ALARM_TARGET if v["target"] == "pass" else POWER_TARGET
        result = "PASS" if v["meets_target"] else "**MISSED**"
        extra = "" if v["interval_clears_target"] else " (interval overlaps target)"
        return f"{sign} {pct(goal)} | {result}{extra}"

    rate_rows = "\n".join(
        f"| {name} | {CONDITIONS[[c.name for c in CONDITIONS].index(name)].description} | "
        f"{v['fails']}/{v['trials']} = {pct(v['rate'])} | {pct(v['ci_low'])} to "
        f"{pct(v['ci_high'])} | {target_text(v)} |"
        for name, v in summary.items()
    )
    head, gate_rows, kind_rows = gate_tables(summary, in_trials)
    gap_head, gap_table_rows = gap_table(results)
    tol_table = tolerance_table(summary, in_trials)
    old = gaps["equal_by_noise"]
    old_design = ", ".join(
        f"{m} {signed(old[section][m], m)}"
        for section, m in (("champion", "average_precision"), ("champion", "cost_per_1k"),
                           ("calibration", "log_loss"), ("calibration", "brier"))
    )  # fmt: skip
    integ = results["integrity_cases"]
    integ_head, integ_sep, integ_rows, reasons = integrity_table(integ)
    cols, limits = list(CONDITIONS), results["gate_settings"]
    cal_rows = "\n".join(
        f"| {name} | {v['base_gap']:+.4f} | {v['sigma']:.3f} | "
        f"{v['auc_gap']:+.4f} ± {v['auc_gap_se']:.4f} |"
        for name, v in calibration.items()
    )
    phases = timing["trial_phases_mean_s"]
    totals = np.array([t["seconds"]["total"] for t in trials], dtype=float)
    spread = (
        f"per trial min {totals.min():.1f} s, median {np.median(totals):.1f} s, "
        f"max {totals.max():.1f} s"
    )
    note = f"\n{results['note']}\n" if results.get("note") else ""
    phase_text = ", ".join(f"{k} {v:.1f} s" for k, v in phases.items() if k != "total")
    budget_rows = "\n".join(
        f"| {name} | {b['latency_ms_p50']:.2f} ms | {b['size_mb']:.2f} MB |"
        for name, b in results["budgets"].items()
    )
    eq = summary.get("equal", {})
    equal_line = (
        f"The equal challenger's mean ROC-AUC difference over the trials: "
        f"{signed(eq['auc_difference'])} (true gap on the pool "
        f"{signed(gaps['equal']['champion']['roc_auc'])})."
        if eq
        else ""
    )
    reading = reading_lines(summary, gaps, limits)
    judged_line = (
        "Gates judged per trial: "
        + ", ".join(f"{c.name} {summary[c.name]['gates_judged']:.1f}" for c in in_trials)
        + f"; of them slices (at least {s['slice_min_positives']} positives in the trial's "
        "holdout; the others are reported, not judged): "
        + ", ".join(f"{summary[c.name]['slices_judged']:.1f}" for c in in_trials)
        + "."
    )
    fixed = results["fixed_thresholds"] or "none"
    aucs_line = (
        "True ROC-AUC (pool), challenger vs champion: "
        + "; ".join(
            f"{c.name} {signed(gaps[c.name]['challenger_auc'])[1:]} vs "
            f"{signed(gaps[c.name]['champion_auc'])[1:]}"
            for c in cols
        )
        + "."
    )
    positives = np.array([t["positives"] for t in trials], dtype=float)
    default_auc = np.array([t["default_auc"] for t in trials], dtype=float)
    population = (
        f"trial holdouts: {positives.mean():,.0f} fraud cases on average (sd "
        f"{positives.std(ddof=1):.0f}); the default model's ROC-AUC {default_auc.mean():.4f} "
        f"(sd {default_auc.std(ddof=1):.4f})"
    )
    budget_note = (
        f"Limits: {limits['budgets']['latency_ms_p50']:g} ms, {limits['budgets']['size_mb']:g} MB."
    )
    return f"""# Gate power: the whole verdict

Command: `{results["command"]}` ({mach["date"]}).
Machine: {mach["cpu"]}, {mach["cores"]} cores, {mach["memory_gb"]} GB RAM, Python {mach["python"]};
{results["workers"]} worker processes, one thread each.{load}
Time: {timing["total_s"] / 60:.1f} min in all: training {timing["train_s"]:.0f} s, budgets
{timing["budgets_s"]:.0f} s, calibration pool {timing["pool_s"]:.0f} s, calibration and pool
metrics {timing["calibrate_s"]:.0f} s, {n} trials {timing["trials_s"]:.0f} s
({timing["trials_s"] / n:.1f} s per trial with {results["workers"]} workers). One trial takes
{phases["total"]:.1f} s of one worker on average ({spread}): {phase_text}
(bootstrap: {timing["bootstrap_models"]} models with {timing["slices"]} slices, 1,000
resamples; judge: {len(in_trials)} verdicts).
{note}
**Verdict: {"PASS" if verdict_ok else "FAIL"}.** Requirement (issue 12, item 6): on the default
example an equally good challenger gets a FAIL verdict in at most {pct(FALSE_ALARM_TARGET)} of
reseeded trials (all gates together), and one 2 ROC-AUC points worse in at least
{pct(POWER_TARGET)}.

## FAIL verdicts

Each trial judges each condition's whole verdict: `judge(settings.gates, Measured(...))`
then `verdict(...)`, the production code, with params.yaml's gates. Intervals are
Clopper-Pearson (exact) 95 %.

| condition | what the challenger is | FAIL verdicts | 95 % interval | target | result |
|---|---|---:|---|---|---|
{rate_rows}

{equal_line}

{reading}

## Fail rate per gate

Share of the {n} trials in which a gate failed, for every gate that failed at least once in
any condition:

| gate | {head} |
|---|{"---:|" * len(in_trials)}
{gate_rows}

Per gate kind (any gate of the kind failed); "skipped" kinds are not judged in the trials:

| kind | {head} |
|---|{"---:|" * len(in_trials)}
{kind_rows}

{judged_line}

**Skipped in the trials** (their measurement left None in `Measured`; they do not depend
on the sampled holdout, so they are deterministic for a given code and model): pipeline
(data validation), integrity, behaviour and parity. Where they are tested:
tests/integration/test_pr_rehearsal.py cases c (bad batch, validation), e (silent row
filter, `integrity:fitted_rows`), f (off-by-one split, `integrity:no_shared_ids`,
`integrity:train_before_holdout`), h (serving-only change, `parity:scores`), and
tests/review/ (each gate's rule). The budget gates read the Comparison, so they are
judged in every trial, on each model's latency and size measured once before the trials
(table below): constant across trials. The default example fixes no threshold in
deploy/environments/ ({fixed}), so there is no `fixed_threshold:` gate (rehearsal case g adds one).

## Silent row filter and split leakage: deterministic

These are judged by the integrity gates on the train stage's record and the split files,
not on the holdout sample: detection is deterministic, so no trials. Measured once on the
default example (`make repro`'s data/ and metrics/ files, copied and modified in a
temporary folder; `integrity.measure` then `settings.gates.integrity.judge`):

| case | {integ_head} | measure |
|---|{integ_sep}---:|
{integ_rows}

{reasons}

silent_row_filter: metrics/train.json records {pct(0.9)} of the train rows as fitted (what the
train stage's `counting_fit` records after rehearsal case e's `train.sample(frac=0.9)`).
off_by_one_split: the first holdout week is also in train (rehearsal case f's
`week <= cutoff`). Detection rate 100 % for both, by construction of the rule; the
rehearsal cases e and f check it end to end through `make gates`.

## True gaps (calibration pool)

Every gated metric on {s["pool_holdouts"]} further fresh holdouts of the default size (seeds
{POOL_SEED} to {POOL_SEED + s["pool_holdouts"] - 1}, independent of the trials): the
mean over the holdouts of the point estimate, ± its standard error. Champion,
calibration and slice rows: the challenger's improvement over its champion (positive =
better; for log loss and Brier, the champion's value minus the challenger's). Floors:
the challenger's value. Baselines: its lift over the baseline. The gate's limit beside
each: a relative gate fails when the whole paired interval is below it, so a true gap
at the limit fails about {pct((1 - s["confidence"]) / 2)} of the time.
`equal_by_noise` is pool only: the old benchmark's equal challenger, shown to explain
why it was replaced.

| metric | limit | {gap_head} |
|---|---:|{"---:|" * len(cols)}
{gap_table_rows}

{aucs_line}

Noise calibration (logit noise on the challenger, sigma bisected on the pool with
{POOL_NOISE_DRAWS} noise draws per holdout until the mean paired ROC-AUC gap is on target
within {MATCH}; redrawn in every trial):

| condition | ROC-AUC gap before noise | sigma | ROC-AUC gap after |
|---|---:|---:|---:|
{cal_rows}

## Budgets (measured once per model)

`compare.latency_ms` (one-row `predict_proba`, median of {s["latency_calls"]} calls, one
thread) on the default holdout, and the joblib file size. {budget_note} A noisy
challenger is its base model plus noise, so it has its base's figures.

| model | latency p50 | size |
|---|---:|---:|
{budget_rows}

## Sensitivity to the tolerances

The fail rate of the champion and calibration gates at other tolerances, from the same
intervals (the gate's rule: the upper end of the paired interval of the improvement below
-tolerance), and of "any slice failed" at other slice tolerances (the production
`Slices` gate run in each trial with that tolerance). Only rows where some tolerance
fails at least once; the params.yaml tolerance is one of the columns.

| condition | gate | | | | |
|---|---|---|---|---|---|
{tol_table}

## Design

- **Fresh holdouts, not bootstrap resamples.** Each trial simulates the holdout weeks
  again with another simulator seed ({TRIAL_SEED} + trial), so the trial-to-trial spread
  is real sampling variation. Default holdout (seed {s["simulator_seed"]}): {d["rows"]:,}
  rows, {d["positives"]:,} fraud cases; {population}.
- **The production verdict.** Per trial, one `bootstrap` of all {timing["bootstrap_models"]}
  models with the params.yaml slices and one of the baselines, both with seed
  {s["bootstrap_seed"]} + trial, so every model sees the same resamples (as compare and
  the evaluate stage do with one seed). Each condition's `Comparison` takes its two
  models' share of that bootstrap, renamed challenger and champion, and goes through
  `slice_summary` and compare()'s summary; the baselines' lift is evaluate's `_lift` on
  the challenger and the baselines. On trial 0 the benchmark checks that this equals,
  number for number, separate `bootstrap` calls of just the pair (as compare) and of the
  challenger with the baselines (as evaluate): every point and every resampled value is
  identical. Then `judge` and `verdict` unchanged. `unseen_rows` keeps every trial row
  (all models were trained on weeks 0-{s["train_weeks"][-1]}).
- **Equally good challenger: same recipe, another draw of the training rows.** The
  champion and the challenger are both the default estimator and params, each trained on
  its own bootstrap resample (same size, with replacement) of the {d["train_rows"]:,}
  default training rows. So the champion of this condition is such a variant too, not
  the default model. The two are exchangeable: on every metric, slice and calibration
  measure their expected gap is zero by symmetry, and they differ by as much as two
  draws of the training data make one recipe differ, with no added noise. This one pair's
  true gaps are not exactly zero (table above: the draw of the pair is itself random);
  they are what the trials test. The old design (another model, logit noise to equal
  ROC-AUC: `equal_by_noise`) equalises ROC-AUC only and leaves whatever the other model
  and the noise do to the other metrics: here {old_design}. Noise followed by a monotone
  recalibration would repair the global calibration but not the slices, and needs a
  fitted recalibration map; the resampled pair needs neither.
- **Worse challengers**: two ways to be {GAP:.3f} ROC-AUC worse, because power depends on
  how different the challenger's errors are: a model that lost an informative feature
  (topped up with noise to the exact gap), and the default model with noise only. The
  noise also worsens calibration, so those gates fire too (per-gate table).
- **Miscalibrated**: the default model with `class_weight: balanced`, trained on the same
  rows: much the same ranking, probabilities far too high.
- Trials are independent and seeded, so the results do not depend on the number of
  worker processes or their order. Raw per-trial results (every judged gate's status,
  value and interval): `bench/results/gate_power.json`.
"""


# ---------------------------------------------------------------- main


def log(message: str) -> None:
    print(f"[gate_power] {message}", file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100, help="reseeded trials (default 100)")
    parser.add_argument("--pool", type=int, default=30, help="calibration holdouts (default 30)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="output folder")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only rebuild gate_power.md from the gate_power.json already in --results",
    )
    return parser.parse_args()


def resume(path: Path, key: str) -> dict[int, dict[str, Any]]:
    """Trials an interrupted run of the same configuration finished."""
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    if not lines or json.loads(lines[0]).get("key") != key:
        return {}
    done = {}
    for line in lines[1:]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the interruption
            continue
        done[record["trial"]] = record
    return done


def train_models(
    args: argparse.Namespace, settings: Settings, context: Any
) -> tuple[dict[str, tuple[Pipeline, Schema]], dict[str, Any]]:
    """Every base model and the baselines, fitted in the worker processes."""
    fitted: dict[str, tuple[Pipeline, Schema]] = {}
    with ProcessPoolExecutor(
        args.workers, mp_context=context, initializer=init_worker, initargs=(settings, {})
    ) as train_exec:
        baselines_job = train_exec.submit(fit_baselines)
        for name, model, schema, seconds in train_exec.map(fit_base, BASES):
            fitted[name] = (model, schema)
            log(f"trained {name} in {seconds:.1f} s")
        baselines, seconds = baselines_job.result()
        log(f"fitted the baselines in {seconds:.1f} s")
    return fitted, baselines


def calibration_pool(
    args: argparse.Namespace, settings: Settings, context: Any, shared: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """Score the pool, calibrate the noise, measure the true gaps; and the seconds."""
    with ProcessPoolExecutor(
        args.workers, mp_context=context, initializer=init_worker, initargs=(settings, shared)
    ) as pool_exec:
        t = time.perf_counter()
        pool = list(pool_exec.map(pool_holdout, [POOL_SEED + j for j in range(args.pool)]))
        pool_s = time.perf_counter() - t
        log(f"calibration pool: {args.pool} holdouts scored in {pool_s:.0f} s")
        t = time.perf_counter()
        jobs = {
            c.name: pool_exec.submit(calibrate, i, c, pool)
            for i, c in enumerate(CONDITIONS)
            if c.gap is not None
        }
        calibration = {name: job.result() for name, job in jobs.items()}
        for name, cal in calibration.items():
            log(f"{name}: sigma {cal['sigma']:.3f}, gap {cal['base_gap']:+.4f} -> "
                f"{cal['auc_gap']:+.4f}")  # fmt: skip
        sigmas = {name: cal["sigma"] for name, cal in calibration.items()}
        per_holdout = list(pool_exec.map(pool_metrics, pool, [sigmas] * len(pool)))
        gaps = true_gaps(per_holdout, settings.gates)
    seconds = {"pool_s": round(pool_s, 1), "calibrate_s": round(time.perf_counter() - t, 1)}
    return calibration, gaps, seconds


def run_trials(
    args: argparse.Namespace, settings: Settings, context: Any, shared: dict[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    """Every trial, resuming from the partial file of an interrupted run of the same
    configuration; and how many were resumed."""
    key = hashlib.sha256(
        json.dumps(
            [
                settings.model_dump(mode="json"),
                shared["sigmas"],
                shared["budgets"],
                shared["fixed"],
                TRIAL_SEED,
            ],
            sort_keys=True,
        ).encode()
    ).hexdigest()
    partial = args.results / PARTIAL
    done = resume(partial, key)
    if done:
        log(f"resuming: {len(done)} trials already done")
    args.results.mkdir(parents=True, exist_ok=True)
    if not done:
        partial.write_text(json.dumps({"key": key}) + "\n")
    trials = [done[i] for i in range(args.trials) if i in done]
    todo = [i for i in range(args.trials) if i not in done]
    with ProcessPoolExecutor(
        args.workers, mp_context=context, initializer=init_worker, initargs=(settings, shared)
    ) as trial_exec, partial.open("a") as sink:  # fmt: skip
        futures = [trial_exec.submit(run_trial, i) for i in todo]
        for future in as_completed(futures):
            record = future.result()
            trials.append(record)
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            fails = {
                c.name: sum(r["conditions"][c.name]["verdict"] == "FAIL" for r in trials)
                for c in CONDITIONS
                if c.in_trials
            }
            log(
                f"trial {len(trials)}/{args.trials} ({record['seconds']['total']:.1f} s); "
                "FAIL so far: " + ", ".join(f"{k} {v}" for k, v in fails.items())
            )
    trials.sort(key=lambda r: r["trial"])
    return trials, len(done)


def run_settings(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The settings the results depend on (for the report)."""
    bs = settings.evaluation.bootstrap
    return {
        "n_resamples": bs.n_resamples,
        "confidence": bs.confidence,
        "bootstrap_seed": bs.seed,
        "review_rate": settings.evaluation.review_rate,
        "estimator": settings.model.estimator,
        "simulator_seed": settings.simulator.seed,
        "train_weeks": list(range(holdout_weeks(settings).start)),
        "holdout_weeks": list(holdout_weeks(settings)),
        "pool_holdouts": args.pool,
        "slice_min_positives": settings.gates.slices.min_positives,
        "latency_calls": settings.gates.budgets.latency_calls,
    }


def main() -> None:
    args = parse_args()
    if args.report_only:
        saved = json.loads((args.results / "gate_power.json").read_text())
        (args.results / "gate_power.md").write_text(report(saved))
        return
    started = time.perf_counter()
    load_start = round(os.getloadavg()[0], 2)  # other work on the machine slows the run
    settings = load_settings(REPO / "params.yaml")
    threadpool_limits(1)  # workers run one thread each; so does this process
    context = multiprocessing.get_context("spawn")
    fitted, baselines = train_models(args, settings, context)
    train, default_holdout = default_data(settings)
    time_column = settings.data_schema.time_column
    assert time_column is not None
    lineages: dict[str, dict[str, Any] | None] = {
        name: {"data": {"train": {"time_max": str(train[time_column].max())}}}
        for name in (CHALLENGER, CHAMPION)
    }
    default = {
        "train_rows": len(train),
        "rows": len(default_holdout),
        "positives": int(default_holdout[settings.data_schema.target].sum()),
    }
    del train, default_holdout
    timing: dict[str, Any] = {"train_s": round(time.perf_counter() - started, 1)}
    t = time.perf_counter()
    budgets = model_budgets(settings, fitted)
    timing["budgets_s"] = round(time.perf_counter() - t, 1)
    log(f"budgets: {budgets}")
    fixed = fixed_thresholds(REPO / "deploy" / "environments")
    shared = {"fitted": fitted, "baselines": baselines}
    calibration, gaps, seconds = calibration_pool(args, settings, context, shared)
    timing |= seconds
    shared |= {
        "sigmas": {name: cal["sigma"] for name, cal in calibration.items()},
        "budgets": budgets,
        "fixed": fixed,
        "lineages": lineages,
    }
    t = time.perf_counter()
    trials, resumed = run_trials(args, settings, context, shared)
    timing |= {"trials_s": round(time.perf_counter() - t, 1), "resumed_trials": resumed}
    integrity = integrity_cases(settings)
    phase_names = list(trials[0]["seconds"])
    timing |= {
        "trial_phases_mean_s": {
            k: round(float(np.mean([r["seconds"].get(k, 0) for r in trials])), 2)
            for k in phase_names
            if k != "check"
        },
        "total_s": round(time.perf_counter() - started, 1),
        "load_average_1min_start": load_start,
        "load_average_1min_end": round(os.getloadavg()[0], 2),
        "bootstrap_models": len(
            {
                model_key(c, side)
                for c in CONDITIONS
                if c.in_trials
                for side in (CHALLENGER, CHAMPION)
            }
        ),
        "slices": len(gaps["equal"]["slices"]),
    }
    results: dict[str, Any] = {
        "command": " ".join([".venv/bin/python bench/gate_power.py", *sys.argv[1:]]),
        "machine": machine(),
        "workers": args.workers,
        "settings": run_settings(args, settings),
        "gate_settings": settings.gates.model_dump(mode="json")
        | {
            "champion": settings.gates.champion.limits,
            "floors": settings.gates.floors.limits,
            "baselines": settings.gates.baselines.limits,
        },
        "fixed_thresholds": fixed,
        "default_holdout": default,
        "bases": [asdict(b) for b in BASES],
        "conditions": [asdict(c) for c in CONDITIONS],
        "calibration": calibration,
        "true_gaps": gaps,
        "budgets": budgets,
        "integrity_cases": integrity,
        "summary": summarise(trials, settings),
        "timing": timing,
        "trials": trials,
    }
    (args.results / "gate_power.json").write_text(json.dumps(results, indent=1) + "\n")
    text = report(results)
    (args.results / "gate_power.md").write_text(text)
    (args.results / PARTIAL).unlink(missing_ok=True)
    print(text)


if __name__ == "__main__":
    main()
