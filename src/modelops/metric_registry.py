"""The metric registry: every metric the project computes, reports and gates on, declared
once with its label, direction, format and whether a slice gate may use it.

training/metrics.py computes them (one function, tested against scikit-learn and, for
the calibration error, a direct formula), config.py and the gates accept only these
names, and the summary and the pull-request report take labels and formats from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator


@dataclass(frozen=True)
class Metric:
    """One metric: how it is named, read and written."""

    name: str
    label: str  # may use {records}, the plural record noun of params.yaml `words`
    higher_is_better: bool
    decimals: int = 4
    per_slice: bool = False  # a slice gate may judge it (defined on any slice with both classes)

    def title(self, records: str = "records") -> str:
        """The label in the words of params.yaml."""
        return self.label.format(records=records)

    def text(self, value: float | None) -> str:
        """A value as the report and summary print it."""
        return "–" if value is None else f"{value:,.{self.decimals}f}"

    def improvement(self, difference: Any) -> Any:
        """A difference (this minus reference; a number or an array) signed so that
        positive means better."""
        return difference if self.higher_is_better else -difference


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", "ROC-AUC", higher_is_better=True, per_slice=True),
        Metric("average_precision", "average precision", higher_is_better=True, per_slice=True),
        Metric(
            "recall_at_review_rate", "recall at review rate", higher_is_better=True, per_slice=True
        ),
        Metric("precision_at_review_rate", "precision at review rate", higher_is_better=True),
        Metric("cost_per_1k", "cost per 1,000 {records}", higher_is_better=False, decimals=1),
        Metric("log_loss", "log loss", higher_is_better=False),
        Metric("brier", "Brier score", higher_is_better=False),
        Metric("ece", "expected calibration error", higher_is_better=False),
    )
}


def _known(name: str) -> str:
    if name not in METRICS:
        raise ValueError(f"unknown metric '{name}'; known: {', '.join(METRICS)}")
    return name


def _per_slice(name: str) -> str:
    if not METRICS[_known(name)].per_slice:
        usable = [m.name for m in METRICS.values() if m.per_slice]
        raise ValueError(f"metric '{name}' is not defined per slice; use one of {usable}")
    return name


MetricName = Annotated[str, AfterValidator(_known)]
SliceMetricName = Annotated[str, AfterValidator(_per_slice)]
