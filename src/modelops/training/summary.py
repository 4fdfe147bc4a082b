"""The short summary `make run` prints after the pipeline: key metrics with intervals,
lift over the baselines, and where the outputs are."""

from __future__ import annotations

from typing import Any

from modelops import paths
from modelops.io import read_json

LABELS = {
    "roc_auc": "ROC-AUC",
    "average_precision": "average precision",
    "recall_at_review_rate": "recall at review rate",
    "precision_at_review_rate": "precision at review rate",
    "log_loss": "log loss",
    "brier": "Brier score",
    "cost_per_1k": "cost per 1k transactions",
}


def _row(label: str, e: dict[str, float], sign: str = "") -> str:
    return (
        f"  {label:<26} {e['value']:{sign}.4f}  [{e['ci_low']:{sign}.4f}, {e['ci_high']:{sign}.4f}]"
    )


def render(metrics: dict[str, Any], baselines: dict[str, Any], lineage: dict[str, Any]) -> str:
    """The summary text."""
    holdout = metrics["holdout"]
    train = lineage["data"]["train"]
    lines = [
        f"Model {lineage['model_id']}: trained on {train['rows']:,} rows, "
        f"evaluated on {holdout['rows']:,} holdout rows ({holdout['positives']:,} positives)",
        f"Holdout metrics ({holdout['confidence']:.0%} bootstrap intervals, "
        f"{holdout['resamples']} resamples; review rate {holdout['review_rate']:.1%}, "
        f"threshold {holdout['threshold']:.4f}):",
    ]
    lines += [_row(LABELS[k], metrics[k]) for k in LABELS if k in metrics]
    lines.append("Lift over baselines (model minus baseline; positive = model better):")
    for name, report in baselines.items():
        lift = report["lift"]
        lines.append(_row(f"{name}: ROC-AUC", lift["roc_auc"], "+"))
        lines.append(_row(f"{name}: average precision", lift["average_precision"], "+"))
    lines += [
        "Outputs:",
        f"  model        {paths.MODEL}  (lineage {paths.LINEAGE}, card {paths.MODEL_CARD})",
        f"  metrics      {paths.METRICS.parent}/  (dvc metrics show)",
        f"  plots        {paths.PLOTS}/  (dvc plots show)",
        f"  scores       {paths.HOLDOUT_SCORES}  (holdout row ids with scores)",
    ]
    return "\n".join(lines)


def summary() -> str:
    """Read the pipeline's outputs and render the summary."""
    return render(
        read_json(paths.METRICS), read_json(paths.BASELINE_METRICS), read_json(paths.LINEAGE)
    )
