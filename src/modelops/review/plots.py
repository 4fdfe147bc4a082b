"""The report's figure: ROC, precision-recall and calibration curves of champion (base)
and challenger (this branch) on the same holdout rows, one PNG with three panels."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from modelops.io import atomic_path

STYLE = {
    "champion": ("base (champion)", "#6e7781", "--"),
    "challenger": ("this PR", "#0969da", "-"),
}


def curves_png(
    scores: pd.DataFrame, target: Path, calibration_bins: int = 10, positive: str = "positive"
) -> Path:
    """Draw each model column of ``scores`` (label + one score column per model);
    ``positive`` is what params.yaml's words call the positive class."""
    fig, (roc, pr, cal) = plt.subplots(1, 3, figsize=(12, 3.8), dpi=100)
    y = scores["label"].to_numpy()
    top = 0.0  # the calibration panel spans the predicted and observed range
    for name in ("champion", "challenger"):
        if name not in scores:
            continue
        label, color, line = STYLE[name]
        s = scores[name].to_numpy()
        fpr, tpr, _ = roc_curve(y, s)
        roc.plot(fpr, tpr, line, color=color, label=label, linewidth=1.6)
        precision, recall, _ = precision_recall_curve(y, s)
        pr.plot(recall, precision, line, color=color, label=label, linewidth=1.6)
        observed, predicted = calibration_curve(y, s, n_bins=calibration_bins, strategy="quantile")
        cal.plot(predicted, observed, line, color=color, marker="o", markersize=3, label=label)
        top = max(top, float(predicted.max()), float(observed.max()))
    roc.plot([0, 1], [0, 1], ":", color="#afb8c1", linewidth=1)
    observed = f"observed {positive} rate"
    top = max(top * 1.05, 0.01)
    cal.plot([0, top], [0, top], ":", color="#afb8c1", linewidth=1)
    cal.set(xlim=(0, top), ylim=(0, top))
    for ax, title, xlabel, ylabel, corner in (
        (roc, "ROC", "false positive rate", "true positive rate", "lower right"),
        (pr, "Precision-recall", "recall", "precision", "upper right"),
        (cal, "Calibration", "mean predicted probability", observed, "upper left"),
    ):
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc=corner, fontsize=8)
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return target
