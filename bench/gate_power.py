"""Gate power: how often the champion ROC-AUC gate flags a challenger that is truly
2 points worse (power), and one that is truly as good (false alarms).

The gate under test is the one a pull request meets: ``gates.relative_gates(...,
kind="champion")`` with ``gates.champion.roc_auc`` from params.yaml, on
``metrics.bootstrap`` with the ``evaluation.bootstrap`` settings. It fails when the
upper end of the paired improvement interval is below ``-tolerance``.

1. Train the champion (the default model on the default training weeks) and a few other
   models on the same rows: one with other hyperparameters, one without a feature.
2. Measure every model's true ROC-AUC on a calibration pool: ``--pool`` fresh holdouts
   (other simulator seeds, the holdout weeks), the mean of the per-holdout ROC-AUCs.
3. Fix each condition's true gap exactly: Gaussian noise on the logit scale is added to
   whichever side is too good, its sigma found by bisection on the pool.
4. Trials: each draws a fresh holdout (a new simulator seed, the holdout weeks, the
   default size), scores every model, draws fresh noise, runs one bootstrap of all
   models on shared resamples (reseeded) and applies the gate to each condition.

Writes bench/results/gate_power.md and bench/results/gate_power.json (every trial).

    .venv/bin/python bench/gate_power.py    # the committed figures, about 20 min on 2 cores
    .venv/bin/python bench/gate_power.py --trials 4 --pool 4 --results /tmp/gp  # a smoke run
    .venv/bin/python bench/gate_power.py --report-only  # rebuild the .md from the .json

Every seed is fixed, so a rerun reproduces every trial exactly (only timings change).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import binomtest, norm
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from modelops.config import Settings, load_settings
from modelops.data.split import split
from modelops.example.simulator import simulate_week
from modelops.review.gates import relative_gates
from modelops.schema import Role, Schema
from modelops.training.evaluate import make_holdout
from modelops.training.metrics import Scored, bootstrap
from modelops.training.scoring import score
from modelops.training.train import build_model, fit
from pipeline_bench import machine

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
METRIC: Final = "roc_auc"
CHAMPION = "champion"
GAP = 0.020  # "2 points below the champion"
MATCH = 0.0005  # the calibrated true gap must be this close to its target
POWER_TARGET = 0.95  # flag at least this share of the worse challengers
FALSE_ALARM_TARGET = 0.05  # flag at most this share of the equal challengers
TRIAL_SEED = 1000  # trial i simulates with seed TRIAL_SEED + i
POOL_SEED = 5000  # calibration holdout j simulates with seed POOL_SEED + j
NOISE_STREAM = 99  # noise for condition k on seed s: default_rng([s, NOISE_STREAM, k, ...])
POOL_NOISE_DRAWS = 8  # noise draws per calibration holdout
TOLERANCES = (0.0, 0.0025, 0.005, 0.0075, 0.01, 0.0125)  # the sensitivity table


@dataclass(frozen=True)
class BaseSpec:
    """A model trained on the default training rows: params overrides, features dropped."""

    name: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    drop: tuple[str, ...] = ()


BASES = (
    BaseSpec(CHAMPION, "the default model (params.yaml)"),
    BaseSpec("leaf15", "max_leaf_nodes 15 instead of 31", params={"max_leaf_nodes": 15}),
    BaseSpec("no_local_hour", "trained without local_hour", drop=("local_hour",)),
)


@dataclass(frozen=True)
class Condition:
    """A challenger built on a base model, with the true ROC-AUC gap it must have."""

    name: str
    challenger: str  # a BaseSpec name
    gap: float  # true challenger ROC-AUC minus the champion's
    description: str

    @property
    def worse(self) -> bool:
        """True for the power conditions, False for the false-alarm condition."""
        return self.gap < 0


CONDITIONS = (
    Condition("equal", "leaf15", 0.0, "other hyperparameters, equalised with noise"),
    Condition("worse_no_local_hour", "no_local_hour", -GAP, "missing local_hour, plus noise"),
    Condition("worse_noise_only", CHAMPION, -GAP, "the champion plus noise only"),
)


@dataclass(frozen=True)
class Calibrated:
    """A condition with its noise fixed on the calibration pool."""

    condition: Condition
    index: int  # selects the condition's noise stream
    noise_on: Literal["challenger", "reference"]  # reference = a noisy champion
    sigma: float  # standard deviation of the logit noise
    base_gap: float  # pool gap before noise
    true_gap: float  # pool gap after noise (mean of per-holdout differences)
    true_gap_se: float  # its standard error over the pool holdouts
    challenger_auc: float
    reference_auc: float

    @property
    def challenger_name(self) -> str:
        return f"{self.condition.name}:challenger"

    @property
    def reference_name(self) -> str:
        return f"{self.condition.name}:reference" if self.noise_on == "reference" else CHAMPION


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


def describe_default(settings: Settings, champion: Pipeline) -> dict[str, Any]:
    """Size of the default training and holdout parts, and the champion's ROC-AUC there."""
    schema = settings.data_schema
    train, holdout = default_data(settings)
    y = holdout[schema.target].to_numpy()
    return {
        "train_rows": len(train),
        "rows": len(holdout),
        "positives": int(y.sum()),
        "champion_auc": float(roc_auc_score(y, score(champion, holdout, schema))),
        **data_summary(holdout, schema),
    }


def data_summary(frame: pd.DataFrame, schema: Schema) -> dict[str, float]:
    """A few population figures, to check that other seeds give the same population."""
    return {
        "fraud_rate": float(frame[schema.target].mean()),
        "online_share": float((frame["channel"] == "online").mean()),
        "median_amount": float(frame["amount"].median()),
    }


def clipped_logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of probabilities, finite at 0 and 1."""
    return np.asarray(logit(np.clip(p, 1e-12, 1 - 1e-12)))


# ---------------------------------------------------------------- worker processes

_WORKER: dict[str, Any] = {}


def init_worker(settings: Settings, fitted: dict[str, tuple[Pipeline, Schema]]) -> None:
    """Give a worker process the settings and models; one thread each (2 workers)."""
    threadpool_limits(1)
    _WORKER["settings"], _WORKER["fitted"] = settings, fitted


def fit_base(spec: BaseSpec) -> tuple[str, Pipeline, Schema, float]:
    """Fit one base model on the default training weeks (worker)."""
    started = time.perf_counter()
    settings: Settings = _WORKER["settings"]
    if "train" not in _WORKER:
        _WORKER["train"] = default_data(settings)[0]
    params = settings.model.params | spec.params
    model_settings = settings.model.model_copy(update={"params": params})
    schema = schema_without(settings.data_schema, spec.drop)
    model = fit(build_model(schema, model_settings), _WORKER["train"], schema)
    return spec.name, model, schema, time.perf_counter() - started


def score_fresh(seed: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """A fresh holdout and every base model's fraud probabilities on it."""
    settings: Settings = _WORKER["settings"]
    frame = simulate_holdout(settings, seed)
    probs = {
        name: np.asarray(score(model, frame, schema), dtype=float)
        for name, (model, schema) in _WORKER["fitted"].items()
    }
    return frame, probs


def pool_holdout(seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One calibration holdout: labels and every base model's log-odds."""
    frame, probs = score_fresh(seed)
    y = frame[_WORKER["settings"].data_schema.target].to_numpy(dtype=np.int8)
    return y, {name: clipped_logit(p) for name, p in probs.items()}


def noise(seed: int, index: int, size: int, *draw: int) -> np.ndarray:
    """Standard normal noise for condition ``index`` on the holdout simulated with ``seed``
    (pool holdouts take several draws)."""
    return np.random.default_rng([seed, NOISE_STREAM, index, *draw]).standard_normal(size)


def run_trial(trial: int, calibrated: list[Calibrated]) -> dict[str, Any]:
    """One reseeded trial: fresh holdout, fresh noise, one shared bootstrap, every gate."""
    started = time.perf_counter()
    settings: Settings = _WORKER["settings"]
    schema, ev = settings.data_schema, settings.evaluation
    seed = TRIAL_SEED + trial
    frame, probs = score_fresh(seed)
    holdout = make_holdout(frame, schema, ev)

    models = {CHAMPION: Scored.at_review_rate(probs[CHAMPION], ev.review_rate)}
    for c in calibrated:
        chal = probs[c.condition.challenger]
        z = noise(seed, c.index, chal.size)
        if c.noise_on == "challenger":
            chal = expit(clipped_logit(chal) + c.sigma * z)
        else:
            ref = expit(clipped_logit(probs[CHAMPION]) + c.sigma * z)
            models[c.reference_name] = Scored.at_review_rate(ref, ev.review_rate)
        models[c.challenger_name] = Scored.at_review_rate(chal, ev.review_rate)

    bs = ev.bootstrap
    result = bootstrap(
        holdout, models, n_resamples=bs.n_resamples, confidence=bs.confidence, seed=bs.seed + trial
    )
    tolerance = settings.gates.champion[METRIC]
    record: dict[str, Any] = {
        "trial": trial,
        "simulator_seed": seed,
        "bootstrap_seed": bs.seed + trial,
        "rows": int(holdout.y.size),
        "positives": int(holdout.y.sum()),
        **data_summary(frame, schema),
        "champion_auc": round(result.points[CHAMPION][METRIC], 6),
        "conditions": {},
    }
    for c in calibrated:
        gate = relative_gates(
            result, c.challenger_name, c.reference_name, {METRIC: tolerance}, kind="champion"
        )[0]
        assert gate.value is not None
        assert gate.ci_low is not None
        assert gate.ci_high is not None
        record["conditions"][c.condition.name] = {
            "status": gate.status,
            "difference": round(gate.value, 6),
            "ci_low": round(gate.ci_low, 6),
            "ci_high": round(gate.ci_high, 6),
            "challenger_auc": round(result.points[c.challenger_name][METRIC], 6),
        }
    record["seconds"] = round(time.perf_counter() - started, 2)
    return record


# ---------------------------------------------------------------- calibration


Pool = list[tuple[np.ndarray, dict[str, np.ndarray]]]


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC from average ranks (ties count half), ten times faster than scikit-learn's
    on a holdout; the bisection below needs thousands of them."""
    order = np.argsort(score, kind="stable")
    ordered = score[order]
    new_run = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], ordered.size]
    rank = ((starts + ends + 1) / 2)[np.cumsum(new_run) - 1]  # 1-based average rank
    positive = y[order] == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((rank[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pool_aucs(pool: Pool, model: str) -> np.ndarray:
    """A base model's ROC-AUC on each pool holdout."""
    return np.array([auc(y, logits[model]) for y, logits in pool])


def true_aucs(pool: Pool) -> dict[str, dict[str, float]]:
    """Each base model's mean ROC-AUC over the pool holdouts, with its standard error."""
    out = {}
    for spec in BASES:
        aucs = pool_aucs(pool, spec.name)
        out[spec.name] = {
            "auc": float(aucs.mean()),
            "se": float(aucs.std(ddof=1) / np.sqrt(aucs.size)),
        }
    return out


def calibrate(index: int, condition: Condition, pool: Pool) -> Calibrated:
    """Find the noise that makes the condition's true gap ``condition.gap`` on the pool.

    Noise goes on the challenger when it is too good, else on the champion (the
    reference then is that noisy champion). Each pool holdout gets POOL_NOISE_DRAWS noise
    draws (they cost no model scoring and shrink the noise's share of the error); the
    draws are fixed while sigma is bisected, so the gap moves smoothly with sigma."""
    noises = [
        [noise(POOL_SEED + j, index, y.size, draw) for draw in range(POOL_NOISE_DRAWS)]
        for j, (y, _) in enumerate(pool)
    ]
    champ, chal = pool_aucs(pool, CHAMPION), pool_aucs(pool, condition.challenger)
    base_gap = float((chal - champ).mean())
    noise_on: Literal["challenger", "reference"] = (
        "challenger" if base_gap > condition.gap else "reference"
    )
    noisy = condition.challenger if noise_on == "challenger" else CHAMPION

    def gaps(sigma: float) -> np.ndarray:
        """The gap on each pool holdout, averaged over its noise draws."""
        aucs = np.array([
            np.mean([auc(y, logits[noisy] + sigma * z) for z in noises[j]])
            for j, (y, logits) in enumerate(pool)
        ])  # fmt: skip
        return np.asarray(aucs - champ if noise_on == "challenger" else chal - aucs)

    def too_far(sigma: float) -> bool:  # gap still on the base side of the target
        g = float(gaps(sigma).mean())
        return g > condition.gap if noise_on == "challenger" else g < condition.gap

    low, high = 0.0, 0.25
    while too_far(high):
        low, high = high, 2 * high
    while high - low > 1e-4:
        mid = (low + high) / 2
        low, high = (mid, high) if too_far(mid) else (low, mid)
    sigma = (low + high) / 2
    g = gaps(sigma)
    true_gap = float(g.mean())
    if abs(true_gap - condition.gap) > MATCH:
        raise SystemExit(f"{condition.name}: calibrated gap {true_gap:+.4f} misses {condition.gap}")
    noisy_aucs = g + champ if noise_on == "challenger" else chal - g
    return Calibrated(
        condition,
        index,
        noise_on,
        sigma,
        base_gap,
        true_gap,
        float(g.std(ddof=1) / np.sqrt(g.size)),
        challenger_auc=float((noisy_aucs if noise_on == "challenger" else chal).mean()),
        reference_auc=float((champ if noise_on == "challenger" else noisy_aucs).mean()),
    )


# ---------------------------------------------------------------- summary and report


def proportion(k: int, n: int) -> dict[str, float]:
    """A rate with its Clopper-Pearson (exact) 95 % interval."""
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return {"flagged": k, "trials": n, "rate": k / n, "ci_low": ci.low, "ci_high": ci.high}


def summarise(
    trials: list[dict[str, Any]], calibrated: list[Calibrated], settings: Settings
) -> dict[str, Any]:
    """Flag rates, targets, the paired differences, interval widths and coverage."""
    tolerance = settings.gates.champion[METRIC]
    z = norm.ppf(0.5 + settings.evaluation.bootstrap.confidence / 2)
    rows = float(np.mean([t["rows"] for t in trials]))
    out: dict[str, Any] = {}
    for c in calibrated:
        recs = [t["conditions"][c.condition.name] for t in trials]
        diff = np.array([r["difference"] for r in recs])
        low, high = np.array([r["ci_low"] for r in recs]), np.array([r["ci_high"] for r in recs])
        flagged = sum(r["status"] == "fail" for r in recs)
        rate = proportion(flagged, len(recs))
        worse = c.condition.worse
        target = POWER_TARGET if worse else FALSE_ALARM_TARGET
        met = rate["rate"] >= target if worse else rate["rate"] <= target
        shown = rate["ci_low"] >= target if worse else rate["ci_high"] <= target
        se = float(np.mean(high - low) / (2 * z))  # bootstrap standard error, approximately
        # the gap actually reached: pool and trials are independent estimates of it
        trial_se = float(diff.std(ddof=1) / np.sqrt(diff.size))
        weights = np.array([c.true_gap_se, trial_se]) ** -2.0
        achieved = float(np.average([c.true_gap, diff.mean()], weights=weights))
        margin = abs(c.condition.gap) - tolerance
        out[c.condition.name] = {
            **rate,
            "target": target,
            "meets_target": bool(met),
            "interval_clears_target": bool(shown),
            "true_gap": c.true_gap,
            "mean_difference": float(diff.mean()),
            "mean_difference_se": trial_se,
            "achieved_gap": achieved,
            "achieved_gap_se": float(weights.sum() ** -0.5),
            "sd_difference": float(diff.std(ddof=1)),
            "mean_bootstrap_se": se,
            "mean_interval_width": float(np.mean(high - low)),
            "coverage": float(np.mean((low <= c.true_gap) & (c.true_gap <= high))),
            "flag_rate_by_tolerance": {
                f"{tol:g}": float(np.mean(high < -tol)) for tol in TOLERANCES
            },
            # normal approximation: rows needed for 95 % power (worse conditions only)
            "rows_for_95pct_power": (
                round(rows * ((z + norm.ppf(POWER_TARGET)) * se / margin) ** 2)
                if worse and margin > 0
                else None
            ),
            "max_tolerance_for_95pct_power": (
                abs(c.condition.gap) - (z + norm.ppf(POWER_TARGET)) * se if worse else None
            ),
        }
    return out


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def report(results: dict[str, Any]) -> str:
    """The Markdown results file."""
    s, mach, d = results["settings"], results["machine"], results["default_holdout"]
    summary, cal, trials = results["summary"], results["calibration"], results["trials"]
    timing = results["timing"]
    n = len(trials)
    load = (
        f" Load average (1 min) at the start {timing['load_average_1min_start']}, at the end "
        f"{timing['load_average_1min_end']}:\nother processes on the machine slow every phase."
        if "load_average_1min_start" in timing
        else ""
    )
    verdict = "PASS" if all(v["meets_target"] for v in summary.values()) else "FAIL"

    def mean_sd(key: str, fmt: str) -> str:
        values = np.array([t[key] for t in trials], dtype=float)
        mean, sd, lo, hi = values.mean(), values.std(ddof=1), values.min(), values.max()
        return f"{mean:{fmt}} (sd {sd:{fmt}}, {lo:{fmt}} to {hi:{fmt}})"

    def trial_mean(key: str) -> float:
        return float(np.mean([t[key] for t in trials]))

    weeks = f"{s['holdout_weeks'][0]}-{s['holdout_weeks'][-1]}"
    auc_rows = "\n".join(
        f"| {spec.name} | {spec.description} | {results['true_auc'][spec.name]['auc']:.4f} "
        f"± {results['true_auc'][spec.name]['se']:.4f} |"
        for spec in BASES
    )
    cal_rows = "\n".join(
        f"| {c['name']} | {c['description']} | {c['base_gap']:+.4f} | {c['noise_on']} | "
        f"{c['sigma']:.3f} | {c['challenger_auc']:.4f} | {c['reference_auc']:.4f} | "
        f"{c['true_gap']:+.4f} ± {c['true_gap_se']:.4f} |"
        for c in cal
    )
    rate_rows = "\n".join(
        f"| {name} | {v['true_gap']:+.4f} | "
        f"{v['achieved_gap']:+.4f} ± {v['achieved_gap_se']:.4f} | "
        f"{v['flagged']}/{v['trials']} = {pct(v['rate'])} | "
        f"{pct(v['ci_low'])} to {pct(v['ci_high'])} | "
        f"{'≥' if v['target'] == POWER_TARGET else '≤'} {pct(v['target'])} | "
        f"{'PASS' if v['meets_target'] else 'FAIL'}"
        f"{'' if v['interval_clears_target'] else ' (interval overlaps target)'} |"
        for name, v in summary.items()
    )
    diff_rows = "\n".join(
        f"| {name} | {v['true_gap']:+.4f} | {v['mean_difference']:+.4f} ± "
        f"{v['mean_difference_se']:.4f} | {v['sd_difference']:.4f} | "
        f"{v['mean_bootstrap_se']:.4f} | {v['mean_interval_width']:.4f} | {pct(v['coverage'])} |"
        for name, v in summary.items()
    )
    tol_header = " | ".join(f"{float(t):g}" for t in TOLERANCES)
    tol_rows = "\n".join(
        f"| {name} | " + " | ".join(pct(r) for r in v["flag_rate_by_tolerance"].values()) + " |"
        for name, v in summary.items()
    )
    size_rows = "\n".join(
        f"| {name} | {v['rows_for_95pct_power']:,} | {v['max_tolerance_for_95pct_power']:.4f} |"
        for name, v in summary.items()
        if v["rows_for_95pct_power"] is not None
    )
    return f"""# Gate power: the champion ROC-AUC gate

Command: `{results["command"]}` ({mach["date"]}).
Machine: {mach["cpu"]}, {mach["cores"]} cores, {mach["memory_gb"]} GB RAM, Python {mach["python"]};
{results["workers"]} worker processes, one thread each.{load}
Time: {timing["total_s"] / 60:.1f} min in all: training {timing["train_s"]:.0f} s,
calibration pool {timing["pool_s"]:.0f} s, calibration {timing["calibrate_s"]:.0f} s,
{n} trials {timing["trials_s"]:.0f} s. One trial takes {timing["trial_mean_s"]:.1f} s of one
worker: simulate the holdout, score {len(BASES)} models, bootstrap
{timing["bootstrap_models"]} models on shared resamples, apply the gates.

**Verdict: {verdict}.** Requirement: on the default example a challenger whose true
ROC-AUC is {GAP:.3f} below the champion's is flagged in at least {pct(POWER_TARGET)} of
reseeded trials, and an equally good challenger in at most {pct(FALSE_ALARM_TARGET)}.

## Flag rates

The gate: `relative_gates(result, challenger, champion, {{"roc_auc": {s["tolerance"]}}},
kind="champion")`, which fails when the upper end of the {pct(s["confidence"])} paired
bootstrap interval of the ROC-AUC improvement is below -{s["tolerance"]}
(`gates.champion.roc_auc`); {s["n_resamples"]:,} resamples (`evaluation.bootstrap`).
Intervals on the rates are Clopper-Pearson (exact) 95 %. "True gap" is the gap the
noise was calibrated to on the pool; "achieved gap" combines the pool and the trials'
mean difference (two independent estimates, inverse-variance weighted). A worse
challenger whose achieved gap is smaller than {GAP:.3f} is harder to flag than the
requirement's, so its rate understates the power at exactly {GAP:.3f}; one whose gap is
larger overstates it a little. A gap larger by d acts like a tolerance larger by d: the
table of other tolerances below shows how much margin each rate has.

| condition | true gap | achieved gap | flagged | 95 % interval | target | result |
|---|---:|---:|---:|---|---|---|
{rate_rows}

## Settings and data

- Tolerance {s["tolerance"]}, {s["n_resamples"]:,} bootstrap resamples, {pct(s["confidence"])}
  percentile intervals, review rate {s["review_rate"]}.
- Champion: `{s["estimator"]}` with the params.yaml params,
  trained on weeks 0-{s["train_weeks"][-1]} of the default data
  ({d["train_rows"]:,} rows, seed {s["simulator_seed"]}).
- Default holdout (weeks {weeks}, seed {s["simulator_seed"]}): {d["rows"]:,} rows,
  {d["positives"]:,} fraud cases; the champion's ROC-AUC there is {d["champion_auc"]:.4f}.
- Trial holdouts (same weeks and size, seeds {TRIAL_SEED} to {TRIAL_SEED + n - 1}):
  {mean_sd("rows", ",.0f")} rows, {mean_sd("positives", ",.0f")} fraud cases; the
  champion's ROC-AUC {mean_sd("champion_auc", ".4f")}.
- Same population under other seeds (default holdout / mean of the trials): fraud rate
  {pct(d["fraud_rate"])} / {pct(trial_mean("fraud_rate"))}, online share
  {pct(d["online_share"])} / {pct(trial_mean("online_share"))}, median amount
  {d["median_amount"]:.2f} / {trial_mean("median_amount"):.2f}.

## True ROC-AUCs (calibration pool)

Mean ROC-AUC over {s["pool_holdouts"]} further fresh holdouts of the default size
(seeds {POOL_SEED} to {POOL_SEED + s["pool_holdouts"] - 1}, {s["pool_rows"]:,} rows in all,
independent of the trials), ± its standard error:

| model | what it is | true ROC-AUC |
|---|---|---:|
{auc_rows}

Each condition's challenger is a base model; the side that is too good gets Gaussian
noise on the logit scale, with sigma bisected on the pool ({POOL_NOISE_DRAWS} noise draws per
holdout) until the mean paired gap is on target (within {MATCH}). The noise is redrawn
in every trial.

| condition | challenger | gap before noise | noise on | sigma | challenger AUC | reference AUC \
| true gap ± se |
|---|---|---:|---|---:|---:|---:|---:|
{cal_rows}

## Paired differences over the trials

Mean of the trials' point differences (± standard error; an independent check of the
calibration), their spread across trials, the bootstrap's own standard error (mean
interval width / {2 * results["z"]:.2f}), the mean interval width, and how often the
interval contains the true gap (nominal {pct(s["confidence"])}).

| condition | true gap | mean difference | sd across trials | bootstrap se | interval width \
| coverage |
|---|---:|---:|---:|---:|---:|---:|
{diff_rows}

Flag rate at other tolerances, from the same intervals (the gate's rule, interval upper
end below -tolerance):

| condition | {tol_header} |
|---|{"---:|" * len(TOLERANCES)}
{tol_rows}

Normal approximation from the measured bootstrap standard error: the holdout size
at which a {GAP:.3f} drop would be flagged with 95 % power at tolerance {s["tolerance"]},
and the largest tolerance that keeps 95 % power at the default size. Against an equally
good challenger, a calibrated interval (see the coverage column) keeps the false-alarm
rate at or below {pct((1 - s["confidence"]) / 2)} (one side of the interval) at tolerance 0,
and lower at any larger tolerance.

| condition | rows for 95 % power | largest tolerance at default size |
|---|---:|---:|
{size_rows}

## Design

- **Fresh holdouts, not bootstrap resamples.** Each trial simulates the holdout weeks
  ({weeks}) again with another simulator seed, so the
  trial-to-trial spread is real sampling variation, not the bootstrap's own model of it.
  Another seed also redraws the cards and merchants; the model sees neither (card_id is an
  entity, merchant_id ignored), and the figures above show the same population: the
  champion's ROC-AUC and the fraud counts vary around the default holdout's values.
- **All models are trained once**, on the default training weeks, as in a pull request
  where both models come from the same data; only the evaluation data is redrawn.
- **True AUC** is the mean ROC-AUC over the pool holdouts: exactly what a trial's point
  estimate estimates. Its uncertainty (± above) is small against the {GAP:.3f} gap, and
  the trials' mean difference checks it independently.
- **Equally good challenger**: a genuinely different model (other hyperparameters) whose
  extra skill is removed with logit noise, so the paired difference has both a model
  part and a noise part, as between two real models.
- **Worse challengers**: two ways to be {GAP:.3f} worse, because the gate's power
  depends on how different the challenger's errors are from the champion's (the spread
  of the paired difference): a model that lost an informative feature (topped up
  with a little noise to the exact gap), and the champion with noise only.
  The verdict requires every one of them to meet the target.
- **One bootstrap per trial**, all models on the same resamples (as the evaluate stage
  does), reseeded per trial ({s["bootstrap_seed"]} + trial).
- Trials are independent and seeded, so the results do not depend on the number of
  worker processes or their order. Raw per-trial results: `bench/results/gate_power.json`.
"""


# ---------------------------------------------------------------- main


def log(message: str) -> None:
    print(f"[gate_power] {message}", file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=120, help="reseeded trials (default 120)")
    parser.add_argument("--pool", type=int, default=30, help="calibration holdouts (default 30)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="output folder")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only rebuild gate_power.md from the gate_power.json already in --results",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.report_only:
        saved = json.loads((args.results / "gate_power.json").read_text())
        (args.results / "gate_power.md").write_text(report(saved))
        return
    started = time.perf_counter()
    load_start = round(os.getloadavg()[0], 2)  # other work on the machine slows the run
    settings = load_settings(REPO / "params.yaml")
    bs = settings.evaluation.bootstrap
    threadpool_limits(1)  # workers run one thread each; so does this process
    context = multiprocessing.get_context("spawn")
    fitted = {}
    with ProcessPoolExecutor(
        args.workers, mp_context=context, initializer=init_worker, initargs=(settings, {})
    ) as train_exec:
        for name, model, schema, seconds in train_exec.map(fit_base, BASES):
            fitted[name] = (model, schema)
            log(f"trained {name} in {seconds:.1f} s")
    default = describe_default(settings, fitted[CHAMPION][0])
    train_s = time.perf_counter() - started

    with ProcessPoolExecutor(
        args.workers, mp_context=context, initializer=init_worker, initargs=(settings, fitted)
    ) as pool_exec:
        t = time.perf_counter()
        pool = list(pool_exec.map(pool_holdout, [POOL_SEED + j for j in range(args.pool)]))
        pool_s = time.perf_counter() - t
        log(f"calibration pool: {args.pool} holdouts scored in {pool_s:.0f} s")
        t = time.perf_counter()
        jobs = [pool_exec.submit(calibrate, i, c, pool) for i, c in enumerate(CONDITIONS)]
        aucs = true_aucs(pool)
        calibrated = [job.result() for job in jobs]
        calibrate_s = time.perf_counter() - t
        for c in calibrated:
            log(
                f"{c.condition.name}: noise on {c.noise_on}, sigma {c.sigma:.3f}, "
                f"gap {c.base_gap:+.4f} -> {c.true_gap:+.4f}"
            )
        del pool

        t = time.perf_counter()
        futures = [pool_exec.submit(run_trial, i, calibrated) for i in range(args.trials)]
        trials: list[dict[str, Any]] = []
        for future in as_completed(futures):
            trials.append(future.result())
            counts = {
                c.condition.name: sum(
                    r["conditions"][c.condition.name]["status"] == "fail" for r in trials
                )
                for c in calibrated
            }
            flagged = ", ".join(f"{name} {k}" for name, k in counts.items())
            log(
                f"trial {len(trials)}/{args.trials} ({trials[-1]['seconds']:.1f} s); "
                f"flagged so far: {flagged}"
            )
        trials_s = time.perf_counter() - t
    trials.sort(key=lambda r: r["trial"])

    z = float(norm.ppf(0.5 + bs.confidence / 2))
    results: dict[str, Any] = {
        "command": " ".join([".venv/bin/python bench/gate_power.py", *sys.argv[1:]]),
        "machine": machine(),
        "workers": args.workers,
        "z": z,
        "settings": {
            "tolerance": settings.gates.champion[METRIC],
            "n_resamples": bs.n_resamples,
            "confidence": bs.confidence,
            "bootstrap_seed": bs.seed,
            "review_rate": settings.evaluation.review_rate,
            "estimator": settings.model.estimator,
            "simulator_seed": settings.simulator.seed,
            "train_weeks": list(range(holdout_weeks(settings).start)),
            "holdout_weeks": list(holdout_weeks(settings)),
            "pool_holdouts": args.pool,
            "pool_rows": args.pool * default["rows"],
        },
        "default_holdout": default,
        "true_auc": aucs,
        "calibration": [
            {
                "name": c.condition.name,
                "description": c.condition.description,
                "challenger_base": c.condition.challenger,
                "target_gap": c.condition.gap,
                **{k: v for k, v in asdict(c).items() if k != "condition"},
            }
            for c in calibrated
        ],
        "summary": summarise(trials, calibrated, settings),
        "timing": {
            "train_s": round(train_s, 1),
            "pool_s": round(pool_s, 1),
            "calibrate_s": round(calibrate_s, 1),
            "trials_s": round(trials_s, 1),
            "trial_mean_s": round(float(np.mean([r["seconds"] for r in trials])), 2),
            "total_s": round(time.perf_counter() - started, 1),
            "load_average_1min_start": load_start,
            "load_average_1min_end": round(os.getloadavg()[0], 2),
            "bootstrap_models": 1 + sum(1 + (c.noise_on == "reference") for c in calibrated),
        },
        "trials": trials,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "gate_power.json").write_text(json.dumps(results, indent=1) + "\n")
    text = report(results)
    (args.results / "gate_power.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
