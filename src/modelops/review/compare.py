"""Challenger (this branch's model) against champion (the base branch's) on the same
holdout rows and the same bootstrap resamples, with the baselines alongside.

Rows the champion was trained on are left out (when the holdout window moved back in
time), so neither model is judged on data it has seen. Serving budgets are measured
here too: one-row latency with one thread, as a server is configured, and file size.
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
from modelops.io import load_model, read_json
from modelops.schema import Schema
from modelops.training.evaluate import make_holdout, score_models, slice_metrics
from modelops.training.metrics import METRICS, BootstrapResult, Scored, bootstrap
from modelops.training.scoring import model_inputs

CHALLENGER, CHAMPION = "challenger", "champion"


@dataclass(frozen=True)
class Comparison:
    """What the gates judge and the report shows."""

    result: BootstrapResult
    scored: dict[str, Scored]
    labels: np.ndarray
    summary: dict[str, Any]  # JSON-ready: holdout, champion source, metrics, slices, budgets


def champion_source(champion_dir: Path = paths.CHAMPION) -> dict[str, Any]:
    """What ``modelops champion`` obtained, or why there is nothing."""
    path = champion_dir / "source.json"
    if not path.exists():
        return {"status": "none", "reason": "the champion was not fetched (run `make champion`)"}
    source: dict[str, Any] = read_json(path)
    return source


def unseen_rows(
    frame: pd.DataFrame, schema: Schema, champion_lineage: dict[str, Any] | None
) -> tuple[pd.DataFrame, str | None]:
    """Holdout rows the champion was not trained on, and a note when some were dropped."""
    train = (champion_lineage or {}).get("data", {}).get("train", {})
    if not schema.time_column or "time_max" not in train:
        return frame, None
    cutoff = pd.Timestamp(train["time_max"])
    keep = frame[schema.time_column] > cutoff
    if keep.all():
        return frame, None
    note = (
        f"{int((~keep).sum()):,} holdout rows up to {cutoff} were left out: "
        "the champion was trained on them"
    )
    return frame[keep.to_numpy()], note


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
    """Score challenger, champion and baselines on the shared holdout rows."""
    schema, evaluation = settings.data_schema, settings.evaluation
    source = champion_source(champion_dir)
    base_lineage = champion_dir / "base" / paths.LINEAGE
    models: dict[str, Any] = {CHALLENGER: load_model(paths.MODEL)}
    frame, note = pd.read_parquet(paths.HOLDOUT), None
    if source["status"] in ("fetched", "retrained"):
        models[CHAMPION] = load_model(champion_dir / "model.joblib")
        lineage = read_json(base_lineage) if base_lineage.exists() else None
        frame, note = unseen_rows(frame, schema, lineage)
    models |= load_model(paths.BASELINES)
    try:
        scored = score_models(models, frame, schema, evaluation.review_rate)
    except (KeyError, ValueError) as exc:  # e.g. the champion needs a column that is gone
        models.pop(CHAMPION)
        source = {**source, "status": "none", "reason": f"cannot score the champion: {exc}"}
        scored = score_models(models, frame, schema, evaluation.review_rate)
    holdout = make_holdout(frame, schema, evaluation)
    boot = evaluation.bootstrap
    result = bootstrap(
        holdout, scored, n_resamples=boot.n_resamples, confidence=boot.confidence, seed=boot.seed
    )
    ranked = [m for m in (CHALLENGER, CHAMPION) if m in models]
    budgets = {
        name: latency_ms(models[name], frame, schema, settings.gates.budgets.latency_calls)
        | {"size_mb": round(_model_size_mb(champion_dir, name), 3)}
        for name in ranked
    }
    summary = {
        "holdout": {
            "rows": int(holdout.y.size),
            "positives": int(holdout.y.sum()),
            "note": note,
            "confidence": boot.confidence,
            "resamples": boot.n_resamples,
            "review_rate": evaluation.review_rate,
        },
        "champion": source,
        "metrics": {
            name: {k: result.estimate(name, k).as_dict() for k in METRICS} for name in scored
        },
        "difference": (
            {k: result.difference(CHALLENGER, CHAMPION, k).as_dict() for k in METRICS}
            if CHAMPION in scored
            else None
        ),
        "thresholds": {name: round(scored[name].threshold, 6) for name in ranked},
        "slices": {
            name: slice_metrics(frame, holdout, scored[name], evaluation.slices) for name in ranked
        },
        "budgets": budgets,
    }
    return Comparison(result, scored, holdout.y, summary)


def _model_size_mb(champion_dir: Path, name: str) -> float:
    path = paths.MODEL if name == CHALLENGER else champion_dir / "model.joblib"
    return path.stat().st_size / 1e6


def scores_frame(comparison: Comparison) -> pd.DataFrame:
    """Label and each ranked model's score per shared holdout row (for the plots)."""
    columns = {
        name: s.score for name, s in comparison.scored.items() if name in (CHALLENGER, CHAMPION)
    }
    return pd.DataFrame({"label": comparison.labels.astype(int), **columns})
