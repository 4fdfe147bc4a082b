"""Evaluate a fitted model on the holdout: metrics with bootstrap intervals, lift over
the baselines on the same rows, per-slice metrics and the data behind the plots."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from modelops.config import DEFAULT_WORDS, EvaluationSettings, SliceSettings, WordSettings
from modelops.metric_registry import METRICS as REGISTRY
from modelops.schema import Schema
from modelops.training.metrics import (
    METRICS,
    BootstrapResult,
    Holdout,
    Scored,
    bootstrap,
    improvement,
    point_estimates,
)
from modelops.training.scoring import score

MODEL = "model"
SLICE_METRICS = tuple(name for name, m in REGISTRY.items() if m.per_slice)
CURVE_POINTS = 200
SCORE_BINS = 40


@dataclass(frozen=True)
class Evaluation:
    """Everything the evaluate stage writes."""

    metrics: dict[str, Any]
    baselines: dict[str, Any]
    slices: dict[str, Any]
    plots: dict[str, pd.DataFrame]
    holdout_scores: pd.DataFrame


def make_holdout(frame: pd.DataFrame, schema: Schema, settings: EvaluationSettings) -> Holdout:
    """Labels and decision costs of the holdout rows."""
    costs = settings.costs

    def per_row(cost: float | str) -> np.ndarray:
        if isinstance(cost, str):
            return frame[cost].fillna(0).to_numpy(dtype=float)
        return np.full(len(frame), float(cost))

    return Holdout(
        y=frame[schema.target].to_numpy(dtype=float),
        missed_cost=per_row(costs.missed_positive),
        false_alarm_cost=per_row(costs.false_alarm),
        action_cost=costs.per_action,
    )


def score_models(
    models: dict[str, Any], frame: pd.DataFrame, schema: Schema, settings: EvaluationSettings
) -> dict[str, Scored]:
    """Each model's scores and its review-rate threshold, on the same rows."""
    return {
        name: scored(np.asarray(score(model, frame, schema), dtype=float), settings)
        for name, model in models.items()
    }


def scored(values: np.ndarray, settings: EvaluationSettings) -> Scored:
    """Scores with the decisions at the review rate and the calibration bins."""
    return Scored.at_review_rate(values, settings.review_rate, settings.calibration_bins)


def _metrics_block(result: BootstrapResult, model: str) -> dict[str, dict[str, float]]:
    return {k: result.estimate(model, k).as_dict() for k in METRICS}


def _lift(result: BootstrapResult, baseline: str) -> dict[str, dict[str, float]]:
    """Model minus baseline (paired), signed so that positive means the model is better."""
    lift = {}
    for k in METRICS:
        lift[k] = improvement(result.difference(MODEL, baseline, k), k).as_dict()
    return lift


def slice_labels(frame: pd.DataFrame, item: SliceSettings) -> pd.Series:
    """The slice each row belongs to, as text."""
    values = frame[item.column]
    if item.bins is None:
        return values.astype(str)
    edges = item.bins
    labels = [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(edges)]
    return pd.cut(values, bins=edges, labels=labels, include_lowest=True).astype(str)


def slice_metrics(
    frame: pd.DataFrame, holdout: Holdout, scored: Scored, slices: list[SliceSettings]
) -> dict[str, Any]:
    """Point metrics per slice value (undefined ranking metrics are null)."""
    out: dict[str, Any] = {}
    for item in slices:
        labels = slice_labels(frame, item).to_numpy()
        rows: dict[str, Any] = {}
        for value in sorted(set(labels)):
            mask = labels == value
            part = holdout.subset(mask)
            positives = int(part.y.sum())
            entry: dict[str, Any] = {"rows": int(mask.sum()), "positives": positives}
            defined = 0 < positives < mask.sum()
            got = point_estimates(part, scored.subset(mask)) if defined else {}
            entry |= {k: round(got[k], 6) if defined else None for k in SLICE_METRICS}
            rows[value] = entry
        out[item.name] = rows
    return out


def _curve(x: np.ndarray, y: np.ndarray, names: tuple[str, str]) -> pd.DataFrame:
    """Thin a curve to about CURVE_POINTS points, keeping its ends."""
    keep = np.unique(np.linspace(0, x.size - 1, min(CURVE_POINTS, x.size)).round().astype(int))
    return pd.DataFrame({names[0]: x[keep].round(5), names[1]: y[keep].round(5)})


def plot_data(
    holdout: Holdout, scored: Scored, calibration_bins: int, words: WordSettings = DEFAULT_WORDS
) -> dict[str, pd.DataFrame]:
    """Tables behind the DVC plots (ROC, PR, calibration, score distribution, confusion).
    Column names are fixed, so dvc.yaml's plot definitions hold for any data; the
    confusion table's class names are ``words.negative`` and ``words.positive``."""
    y, s = holdout.y, scored.score
    fpr, tpr, _ = roc_curve(y, s)
    precision, recall, _ = precision_recall_curve(y, s)
    observed, predicted = calibration_curve(y, s, n_bins=calibration_bins, strategy="quantile")
    edges = np.linspace(0, 1, SCORE_BINS + 1)
    negative, _ = np.histogram(s[y == 0], bins=edges)
    positive, _ = np.histogram(s[y == 1], bins=edges)
    names = np.array([words.negative, words.positive])
    return {
        "roc": _curve(fpr, tpr, ("fpr", "tpr")),
        "precision_recall": _curve(recall[::-1], precision[::-1], ("recall", "precision")),
        "calibration": pd.DataFrame(
            {"mean_predicted": predicted.round(5), "fraction_positive": observed.round(5)}
        ),
        "score_distribution": pd.DataFrame(
            {
                "score": ((edges[:-1] + edges[1:]) / 2).round(4),
                "negative": (negative / max(negative.sum(), 1)).round(6),
                "positive": (positive / max(positive.sum(), 1)).round(6),
            }
        ),
        "confusion": pd.DataFrame(
            {"actual": names[y.astype(int)], "predicted": names[scored.flagged.astype(int)]}
        ),
    }


def evaluate(
    model: Any,
    baselines: dict[str, Any],
    frame: pd.DataFrame,
    schema: Schema,
    settings: EvaluationSettings,
    progress: Callable[[int], object] | None = None,
    words: WordSettings = DEFAULT_WORDS,
) -> Evaluation:
    """Score the model and its baselines on the same holdout rows and resamples."""
    holdout = make_holdout(frame, schema, settings)
    scored = score_models({MODEL: model, **baselines}, frame, schema, settings)
    boot = settings.bootstrap
    result = bootstrap(
        holdout,
        scored,
        n_resamples=boot.n_resamples,
        confidence=boot.confidence,
        seed=boot.seed,
        progress=progress,
    )
    main = scored[MODEL]
    metrics = _metrics_block(result, MODEL) | {
        "holdout": {
            "rows": int(holdout.y.size),
            "positives": int(holdout.y.sum()),
            "review_rate": settings.review_rate,
            "threshold": round(main.threshold, 6),
            "decline_rate": settings.decline_rate,
            "decline_threshold": round(
                Scored.at_review_rate(main.score, settings.decline_rate).threshold, 6
            ),
            "confidence": boot.confidence,
            "resamples": boot.n_resamples,
        }
    }
    baseline_report = {
        name: {"metrics": _metrics_block(result, name), "lift": _lift(result, name)}
        for name in baselines
    }
    ids = frame[schema.id_column] if schema.id_column else pd.Series(frame.index, name="row")
    holdout_scores = pd.DataFrame(
        {
            ids.name or "row": ids.to_numpy(),
            "score": main.score,
            "label": holdout.y.astype(int),
            "flagged": main.flagged,
        }
    )
    return Evaluation(
        metrics=metrics,
        baselines=baseline_report,
        slices=slice_metrics(frame, holdout, main, settings.slices),
        plots=plot_data(holdout, main, settings.calibration_bins, words),
        holdout_scores=holdout_scores,
    )
