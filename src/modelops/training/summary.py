"""The short summary `make run` prints after the pipeline: key metrics with intervals,
lift over the baselines, plain warnings when the settings cannot work out, and where
the outputs are."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelops import paths
from modelops.config import DEFAULT_PARAMS, DEFAULT_WORDS, WordSettings, load_settings
from modelops.io import read_json
from modelops.metric_registry import METRICS

RATE_WARNING = 0.5  # warn when the action rate is below this share of the positive rate
LIFT_METRICS = {"roc_auc": "ROC-AUC", "average_precision": "average precision"}
LINEAR = (
    "a linear estimator (model.estimator: sklearn.linear_model.LogisticRegression with "
    "model.encoding: onehot)"
)


def metric_labels(words: WordSettings = DEFAULT_WORDS) -> dict[str, str]:
    """What the summary and the report call each metric (the metric registry's labels)."""
    return {name: metric.title(words.plural) for name, metric in METRICS.items()}


def _row(label: str, e: dict[str, float], width: int, sign: str = "", digits: int = 4) -> str:
    value, low, high = (f"{e[k]:{sign},.{digits}f}" for k in ("value", "ci_low", "ci_high"))
    return f"  {label:<{width}} {value}  [{low}, {high}]"


def rate_warning(holdout: dict[str, Any], words: WordSettings = DEFAULT_WORDS) -> str | None:
    """A warning when the action rate is far below the holdout's positive rate."""
    rate, rows = holdout["review_rate"], holdout["rows"]
    positive_rate = holdout["positives"] / rows if rows else 0.0
    if not positive_rate or rate >= RATE_WARNING * positive_rate:
        return None
    return (
        f"Warning: the action rate (evaluation.review_rate {rate:.2%}) is far below the "
        f"holdout's {words.positive} rate ({positive_rate:.2%}): most {words.positive} cases "
        f"cannot be acted on at this rate; at most {rate / positive_rate:.0%} of them can be "
        "flagged. Raise evaluation.review_rate in params.yaml if you can act on more "
        f"{words.plural}."
    )


def baseline_warnings(
    baselines: dict[str, Any], margins: Mapping[str, float], estimator: str = ""
) -> list[str]:
    """A warning per baseline the model does not beat by the margin of ``gates.baselines``
    (the lower bound of the lift's interval below the margin, ROC-AUC or AP)."""
    choices = "other features, or a smaller margin in gates.baselines"
    if not estimator.endswith(".LogisticRegression"):
        choices = f"{LINEAR}, {choices}"
    model = f"the model ({estimator.rsplit('.', 1)[-1]})" if estimator else "the model"
    warnings = []
    for name, report in baselines.items():
        short = [
            f"{label} lift {report['lift'][m]['value']:+.4f}, lower bound "
            f"{report['lift'][m]['ci_low']:+.4f} < margin {margins[m]:g}"
            for m, label in LIFT_METRICS.items()
            if m in margins and m in report["lift"] and report["lift"][m]["ci_low"] < margins[m]
        ]
        if short:
            warnings.append(
                f"Warning: {model} does not beat the {name} baseline by the configured "
                f"margin (gates.baselines): {'; '.join(short)}. The baseline gates will fail "
                f"on their merits; choices: {choices}."
            )
    return warnings


def render(
    metrics: dict[str, Any],
    baselines: dict[str, Any],
    lineage: dict[str, Any],
    *,
    words: WordSettings = DEFAULT_WORDS,
    margins: Mapping[str, float] | None = None,
) -> str:
    """The summary text; ``margins`` are ``gates.baselines``."""
    holdout = metrics["holdout"]
    train = lineage["data"]["train"]
    labels = metric_labels(words)
    lines = [
        f"Model {lineage['model_id']}: trained on {train.get('fitted_rows', train['rows']):,} "
        f"{words.plural}, "
        f"evaluated on {holdout['rows']:,} holdout {words.plural} "
        f"({holdout['positives']:,} {words.positive} cases)",
        f"Holdout metrics ({holdout['confidence']:.0%} bootstrap intervals, "
        f"{holdout['resamples']} resamples; review rate {holdout['review_rate']:.1%}, "
        f"threshold {holdout['threshold']:.4f}):",
    ]
    lifts = [
        (f"{name}: {label}", report["lift"][metric])
        for name, report in baselines.items()
        for metric, label in LIFT_METRICS.items()
    ]
    width = max(len(label) for label in [*labels.values(), *(label for label, _ in lifts)])
    lines += [
        _row(labels[k], metrics[k], width, digits=1 if k == "cost_per_1k" else 4)
        for k in labels
        if k in metrics
    ]
    lines.append("Lift over baselines (model minus baseline; positive = model better):")
    lines += [_row(label, lift, width, "+") for label, lift in lifts]
    warning = rate_warning(holdout, words)
    lines += [warning] if warning else []
    estimator = lineage.get("model", {}).get("estimator", "")
    lines += baseline_warnings(baselines, margins or {}, estimator)
    lines += [
        "Outputs:",
        f"  model        {paths.MODEL}  (lineage {paths.LINEAGE}, model card {paths.MODEL_CARD})",
        f"  metrics      {paths.METRICS.parent}/  (dvc metrics show)",
        f"  plots        {paths.PLOTS}/  (dvc plots show)",
        f"  scores       {paths.HOLDOUT_SCORES}  (holdout row ids with scores)",
    ]
    return "\n".join(lines)


def summary(params: Path | str = DEFAULT_PARAMS) -> str:
    """Read the pipeline's outputs and the settings, and render the summary."""
    outputs = [read_json(p) for p in (paths.METRICS, paths.BASELINE_METRICS, paths.LINEAGE)]
    settings = load_settings(params)
    margins = dict(settings.gates.baselines.limits)
    return render(*outputs, words=settings.words, margins=margins)
