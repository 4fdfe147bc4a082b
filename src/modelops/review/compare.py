"""Challenger (this branch's model) against champion (the base branch's) on the same
holdout rows and the same bootstrap resamples: headline metrics, thresholds, and each
slice's paired difference.

Rows either model was trained on are left out (when the holdout window moved back in
time, or a split leaks), so neither model is judged on data it has seen. The
challenger's scores are the evaluate stage's (reports/holdout_scores.parquet), not
computed again. Serving budgets are measured here too: one-row latency with one thread,
as a server is configured, and file size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from modelops import paths
from modelops.config import Settings
from modelops.errors import InputError
from modelops.io import load_model, read_json
from modelops.metric_registry import METRICS
from modelops.schema import Schema
from modelops.training.evaluate import (
    make_holdout,
    score_models,
    scored,
    slice_labels,
)
from modelops.training.metrics import (
    BootstrapResult,
    Holdout,
    Scored,
    bootstrap,
    improvement,
    in_slice,
)
from modelops.training.scoring import model_inputs

CHALLENGER, CHAMPION = "challenger", "champion"


class NoSharedRowsError(InputError):
    """No holdout rows with both classes are left that neither model was trained on."""


@dataclass(frozen=True)
class Comparison:
    """What the gates judge and the report shows."""

    result: BootstrapResult
    scored: dict[str, Scored]
    labels: np.ndarray
    summary: dict[str, Any]  # JSON-ready: holdout, champion source, metrics, slices, budgets
    slice_draws: dict[str, np.ndarray]  # "column=value" -> the improvement per resample


def champion_source(champion_dir: Path = paths.CHAMPION) -> dict[str, Any]:
    """What ``modelops champion`` obtained, or why there is nothing."""
    path = champion_dir / "source.json"
    if not path.exists():
        return {"status": "none", "reason": "the champion was not fetched (run `make champion`)"}
    source: dict[str, Any] = read_json(path)
    return source


def unseen_rows(
    frame: pd.DataFrame, schema: Schema, lineages: dict[str, dict[str, Any] | None]
) -> tuple[np.ndarray, str | None]:
    """Which holdout rows no model (name -> its lineage) was trained on, and a note when
    some were left out."""
    keep = np.ones(len(frame), dtype=bool)
    cutoffs = {
        name: pd.Timestamp(lineage["data"]["train"]["time_max"])
        for name, lineage in lineages.items()
        if lineage and "time_max" in lineage.get("data", {}).get("train", {})
    }
    if not schema.time_column or not cutoffs:
        return keep, None
    cutoff = max(cutoffs.values())
    keep = (frame[schema.time_column] > cutoff).to_numpy()
    if keep.all():
        return keep, None
    who = " and the ".join(name for name, c in cutoffs.items() if c == cutoff)
    left_out = int((~keep).sum())
    return (
        keep,
        f"{left_out:,} holdout rows up to {cutoff} were left out: the {who} was trained on them",
    )


def challenger_scores(labels: np.ndarray) -> np.ndarray | None:
    """The evaluate stage's holdout scores, when they are for these rows."""
    if not paths.HOLDOUT_SCORES.exists():
        return None
    table = pd.read_parquet(paths.HOLDOUT_SCORES, columns=["score", "label"])
    if len(table) != labels.size or not np.array_equal(table["label"].to_numpy(), labels):
        return None
    return table["score"].to_numpy(dtype=float)


def latency_ms(model: Any, frame: pd.DataFrame, schema: Schema, calls: int) -> dict[str, float]:
    """One-row ``predict_proba`` latency (p50, p95) with one thread, after a warm-up."""
    rows = model_inputs(model, frame, schema).sample(min(calls, len(frame)), random_state=0)
    singles = [rows.iloc[[i]] for i in range(len(rows))]
    times = []
    with threadpool_limits(limits=1):
        for row in singles[:10]:
            model.predict_proba(row)
        for row in singles:
            start = time.perf_counter()
            model.predict_proba(row)
            times.append((time.perf_counter() - start) * 1000)
    p50, p95 = np.percentile(times, [50, 95])
    return {"latency_ms_p50": round(float(p50), 3), "latency_ms_p95": round(float(p95), 3)}


def compare(settings: Settings, champion_dir: Path = paths.CHAMPION) -> Comparison:
    """Score challenger and champion on the shared holdout rows and resamples."""
    schema, evaluation = settings.data_schema, settings.evaluation
    source = champion_source(champion_dir)
    base_lineage = champion_dir / "base" / paths.LINEAGE
    models: dict[str, Any] = {CHALLENGER: load_model(paths.MODEL)}
    frame = pd.read_parquet(paths.HOLDOUT)
    offline = challenger_scores(frame[schema.target].to_numpy(dtype=int))
    lineages = {CHALLENGER: read_json(paths.LINEAGE) if paths.LINEAGE.exists() else None}
    if source["status"] in ("fetched", "retrained"):
        models[CHAMPION] = load_model(champion_dir / "model.joblib")
        lineages[CHAMPION] = read_json(base_lineage) if base_lineage.exists() else None
    keep, note = unseen_rows(frame, schema, lineages)
    frame = frame[keep].reset_index(drop=True)
    labels = frame[schema.target].to_numpy()
    if not 0 < labels.sum() < labels.size:
        raise NoSharedRowsError(
            f"{note or 'the holdout'}: the {labels.size:,} rows left hold one class only, "
            "so no model can be judged on them"
        )
    if offline is None:
        got = score_models({CHALLENGER: models[CHALLENGER]}, frame, schema, evaluation)
    else:
        got = {CHALLENGER: scored(offline[keep], evaluation)}
    if CHAMPION in models:
        try:
            got |= score_models({CHAMPION: models[CHAMPION]}, frame, schema, evaluation)
        except (KeyError, ValueError) as exc:  # e.g. the champion needs a column that is gone
            models.pop(CHAMPION)
            source = {**source, "status": "none", "reason": f"cannot score the champion: {exc}"}
    holdout = make_holdout(frame, schema, evaluation)
    groups = slice_groups(frame, settings)
    boot = evaluation.bootstrap
    result = bootstrap(
        holdout, got, n_resamples=boot.n_resamples, confidence=boot.confidence, seed=boot.seed,
        slices=groups,
    )  # fmt: skip
    budgets = {
        name: latency_ms(models[name], frame, schema, settings.gates.budgets.latency_calls)
        | {"size_mb": round(_model_size_mb(champion_dir, name), 3)}
        for name in got
    }
    return assemble(settings, result, got, holdout, groups, budgets, note, source)


def assemble(
    settings: Settings,
    result: BootstrapResult,
    got: dict[str, Scored],
    holdout: Holdout,
    groups: dict[str, np.ndarray],
    budgets: dict[str, dict[str, float]],
    note: str | None,
    source: dict[str, Any],
) -> Comparison:
    """The Comparison of the scored models from their shared bootstrap (also what
    bench/gate_power.py builds in memory for each trial)."""
    evaluation, boot = settings.evaluation, settings.evaluation.bootstrap
    slices, draws = slice_summary(result, groups, holdout, settings.gates.slices.metric)
    summary = {
        "holdout": {
            "rows": int(holdout.y.size),
            "positives": int(holdout.y.sum()),
            "note": note,
            "confidence": boot.confidence,
            "resamples": boot.n_resamples,
            "review_rate": evaluation.review_rate,
            "decline_rate": evaluation.decline_rate,
        },
        "champion": source,
        "metrics": {name: {k: result.estimate(name, k).as_dict() for k in METRICS} for name in got},
        "difference": (
            {k: result.difference(CHALLENGER, CHAMPION, k).as_dict() for k in METRICS}
            if CHAMPION in got
            else None
        ),
        "thresholds": {
            name: {
                "review": round(s.threshold, 6),
                "decline": round(
                    Scored.at_review_rate(s.score, evaluation.decline_rate).threshold, 6
                ),
            }
            for name, s in got.items()
        },
        "slices": slices,
        "budgets": budgets,
    }
    return Comparison(result, got, holdout.y, summary, draws)


def slice_groups(frame: pd.DataFrame, settings: Settings) -> dict[str, np.ndarray]:
    """Every slice value as ``column=value`` -> its rows."""
    groups: dict[str, np.ndarray] = {}
    for item in settings.evaluation.slices:
        labels = slice_labels(frame, item).to_numpy()
        for value in sorted(set(labels)):
            groups[f"{item.name}={value}"] = labels == value
    return groups


def slice_summary(
    result: BootstrapResult,
    groups: dict[str, np.ndarray],
    holdout: Holdout,
    metric: str,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Per slice: rows, positives, each model's metric and the paired improvement
    (JSON-ready), and the improvement's resampled values (for the slice gates)."""
    tree: dict[str, dict[str, Any]] = {}
    draws: dict[str, np.ndarray] = {}
    for key, mask in groups.items():
        group, value = key.split("=", 1)
        entry: dict[str, Any] = {
            "rows": int(mask.sum()),
            "positives": int(holdout.y[mask].sum()),
            "improvement": None,
        }
        for model in (CHALLENGER, CHAMPION):
            part = in_slice(model, key)
            entry[model] = round(result.points[part][metric], 6) if part in result.points else None
        ours, theirs = in_slice(CHALLENGER, key), in_slice(CHAMPION, key)
        if ours in result.points and theirs in result.points:
            diff = improvement(result.difference(ours, theirs, metric), metric)
            entry["improvement"] = diff.as_dict()
            draws[key] = METRICS[metric].improvement(
                result.draws[ours][metric] - result.draws[theirs][metric]
            )
        tree.setdefault(group, {})[value] = entry
    return {"metric": metric, "groups": tree}, draws


def _model_size_mb(champion_dir: Path, name: str) -> float:
    path = paths.MODEL if name == CHALLENGER else champion_dir / "model.joblib"
    return path.stat().st_size / 1e6


def scores_frame(comparison: Comparison) -> pd.DataFrame:
    """Label and each ranked model's score per shared holdout row (for the plots)."""
    columns = {
        name: s.score for name, s in comparison.scored.items() if name in (CHALLENGER, CHAMPION)
    }
    return pd.DataFrame({"label": comparison.labels.astype(int), **columns})
