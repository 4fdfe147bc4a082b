"""`make monitor`: one check of the prediction log, as a markdown report and a JSON
verdict (``ok``, ``warn`` or ``retrain``, with every reason).

The check reads the windows of ``monitoring.window_days`` that end at ``now`` (the latest
is the current window; the earlier ones feed the control charts and the delayed labels),
and asks each detector for findings:

- decay: each served version and route on the latest window whose labels have matured
  (performance.py; newer windows are shown as provisional), against its holdout;
- staleness: the champion's training data ended more than ``max_model_age_days`` ago;
- control charts of the champion's windows (spc.py; a window under ``drift.min_rows``
  rows is not charted): the latest window alarming is a warning; ``control.alarms`` of
  the last ``control.of_last`` windows call for retraining.

A finding is a warning or calls for retraining; the verdict is the worst of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelops.config import Settings
from modelops.io import write_json, write_text
from modelops.monitoring import labels, performance, reference, spc
from modelops.serving.predlog import make_engine, redacted

REPORTS = Path("reports/monitoring")
HISTORY_WINDOWS = 26  # windows read for the control charts and the label curves
Level = Literal["ok", "warn", "retrain"]
LEVELS: tuple[Level, ...] = ("ok", "warn", "retrain")


@dataclass(frozen=True)
class Finding:
    """One detector's reason to warn or to retrain."""

    detector: str
    level: Level
    reason: str


@dataclass(frozen=True)
class Verdict:
    """The check's outcome: the worst finding's level and every finding."""

    level: Level
    findings: list[Finding]
    window_start: str
    window_end: str
    versions: list[str] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """Each finding as ``detector: reason``."""
        return [f"{f.detector}: {f.reason}" for f in self.findings]

    def to_json(self) -> dict[str, Any]:
        """What verdict.json holds."""
        return asdict(self) | {"reasons": self.reasons}


@dataclass
class Context:
    """What the detectors share: the settings, the log's windows and the versions."""

    root: Path
    settings: Settings
    now: pd.Timestamp
    outcomes: pd.DataFrame  # labels.load_outcomes, with a "window" column
    curves: dict[int, labels.ArrivalCurve]
    maturity: pd.DataFrame
    lineages: dict[str, dict[str, Any] | None]

    @property
    def current(self) -> pd.Timestamp:
        """The start of the latest window."""
        return self.now - pd.Timedelta(days=self.settings.monitoring.window_days)

    @property
    def champion(self) -> str | None:
        """The version answering most of the latest window's requests as champion."""
        latest = self.outcomes[(self.outcomes["window"] == self.current)]
        served = latest.loc[latest["route"] == "champion", "model_version"]
        return None if served.empty else str(served.value_counts().index[0])


Section = Callable[[Context], tuple[list[Finding], list[str]]]


def run(
    root: Path,
    settings: Settings,
    log_url: str,
    now: dt.datetime | None = None,
    out: Path = REPORTS,
) -> Verdict:
    """Check the window of ``log_url`` ending at ``now`` (default: this moment); write
    ``out``/report.md and ``out``/verdict.json; return the verdict."""
    context = load(root, settings, log_url, now)
    findings: list[Finding] = []
    body: list[str] = []
    for section in SECTIONS:
        found, lines = section(context)
        findings += found
        body += [*lines, ""]
    level: Level = max((f.level for f in findings), key=LEVELS.index, default="ok")
    verdict = Verdict(
        level,
        findings,
        f"{context.current:%Y-%m-%d %H:%M}",
        f"{context.now:%Y-%m-%d %H:%M}",
        sorted(context.lineages),
    )
    out.mkdir(parents=True, exist_ok=True)
    write_json(verdict.to_json(), out / "verdict.json")
    head = [
        f"# Monitoring: {verdict.level.upper()}",
        "",
        f"Window {verdict.window_start} to {verdict.window_end} UTC of the prediction log "
        f"at {redacted(log_url)}; {len(context.outcomes):,} predictions read.",
        "",
        *([f"- **{f.level}** {f.detector}: {f.reason}" for f in findings] or ["Nothing found."]),
        "",
    ]
    write_text("\n".join(head + body), out / "report.md")
    return verdict


def load(root: Path, settings: Settings, log_url: str, now: dt.datetime | None) -> Context:
    """The windows of the log ending at ``now`` and what is known of their versions."""
    monitoring = settings.monitoring
    end = pd.Timestamp(now or dt.datetime.now(dt.UTC))
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    start = end - pd.Timedelta(days=monitoring.window_days * HISTORY_WINDOWS)
    engine = make_engine(log_url)
    try:
        outcomes = labels.load_outcomes(
            engine, start, end, fields=settings.evaluation.costs.columns()
        )
    finally:
        engine.dispose()
    outcomes["window"] = labels.window_of(outcomes["created_at"], end, monitoring.window_days)
    curves = labels.arrival_curves(outcomes, end)
    maturity = labels.window_maturity(outcomes, "window", end, curves, monitoring.labels)
    tags = sorted(outcomes["model_version"].unique())
    return Context(
        root,
        settings,
        end,
        outcomes,
        curves,
        maturity,
        {tag: reference.lineage(root, settings, tag) for tag in tags},
    )


def decay(context: Context) -> tuple[list[Finding], list[str]]:
    """Live performance of each version and route on the latest mature window."""
    settings = context.settings
    lines = ["## Performance from delayed labels", ""]
    mature = context.maturity.index[context.maturity["mature"]]
    if len(mature) == 0:
        return [], [*lines, "No window's labels have matured yet: nothing judged."]
    judged_window = mature.max()
    rows = context.outcomes[context.outcomes["window"] == judged_window]
    holdout = {
        tag: value
        for tag, found in context.lineages.items()
        if found and (value := performance.holdout_metric(found)) is not None
    }
    results = performance.live_performance(rows, context.now, context.curves, settings, holdout)
    lines += [
        f"Window from {judged_window:%Y-%m-%d}, the latest whose labels are expected at least "
        f"{settings.monitoring.labels.min_maturity:.0%} in; intervals "
        f"{settings.evaluation.bootstrap.confidence:.0%} bootstrap.",
        "",
        "| version | route | rows | labelled | positives | labels in | status | ROC-AUC | "
        "holdout | floor |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    findings = []
    for result in results:
        auc = result.metrics.get("roc_auc")
        shown = "n/a" if auc is None else f"{auc.value:.3f} [{auc.ci_low:.3f}, {auc.ci_high:.3f}]"
        lines.append(
            f"| {result.model_version} | {result.route} | {result.rows:,} | {result.labelled:,} "
            f"| {result.positives:,} | {result.completeness:.0%} | {result.status} | {shown} "
            f"| {_number(result.holdout_auc)} | {_number(result.auc_floor)} |"
        )
        if result.decayed and auc is not None:
            findings.append(
                Finding(
                    "decay",
                    "retrain",
                    f"{result.model_version} ({result.route}) ROC-AUC {auc.value:.3f} "
                    f"[{auc.ci_low:.3f}, {auc.ci_high:.3f}] is below its holdout "
                    f"{_number(result.holdout_auc)} less monitoring.max_auc_drop",
                )
            )
    return findings, lines


def staleness(context: Context) -> tuple[list[Finding], list[str]]:
    """The champion's age against ``monitoring.max_model_age_days``."""
    lines = ["## Staleness", ""]
    champion = context.champion
    found = context.lineages.get(champion) if champion else None
    if champion is None or found is None:
        return [], [*lines, "No champion with a known lineage in the latest window."]
    age = performance.staleness(found, context.now, context.settings.monitoring)
    if age.age_days is None:
        return [], [*lines, f"{champion}: the data has no time column; age unknown."]
    lines.append(
        f"{champion}: trained on data up to {age.trained_until:%Y-%m-%d}, "
        f"{age.age_days:.0f} days ago (limit {age.limit_days})."
    )
    if not age.stale:
        return [], lines
    reason = f"{champion} is {age.age_days:.0f} days old (max_model_age_days {age.limit_days})"
    return [Finding("staleness", "retrain", reason)], lines


def control(context: Context) -> tuple[list[Finding], list[str]]:
    """CUSUM charts of the champion's windows; the k-of-n rule."""
    settings, champion = context.settings, context.champion
    lines = ["## Control charts", ""]
    found = context.lineages.get(champion) if champion else None
    if champion is None or found is None:
        return [], [*lines, "No champion with a known lineage: nothing charted."]
    served = context.outcomes[
        (context.outcomes["model_version"] == champion) & (context.outcomes["route"] != "shadow")
    ]
    means, rows = spc.log_statistics(
        served, "window", found["decision"]["threshold"], context.maturity["mature"]
    )
    means = means.where(rows >= settings.monitoring.drift.min_rows)  # too few: not judged
    holdout = found["data"]["holdout"]
    in_control = {
        spc.POSITIVE_RATE: spc.InControl.rate(holdout["positives"] / holdout["rows"]),
        spc.FLAG_RATE: spc.InControl.rate(found["decision"]["review_rate"]),
    }
    charts = spc.control_charts(means, rows, in_control, settings.monitoring.control)
    alarms = spc.alarming(charts)
    chosen = settings.monitoring.control
    rule = spc.k_of_n(alarms, chosen.alarms, chosen.of_last)
    lines += [
        f"{champion}: CUSUM per statistic, calibrated together to one false alarm per "
        f"{chosen.arl:g} windows; {rule.count} of the last "
        f"{rule.of_last} windows alarmed ({rule.alarms} call for retraining).",
        "",
        "| window | " + " | ".join(charts) + " |",
        "|---|" + "---:|" * len(charts),
    ]
    for i, window in enumerate(means.index):
        cells = [_chart_cell(chart, i) for chart in charts.values()]
        lines.append(f"| {window:%Y-%m-%d} | " + " | ".join(cells) + " |")
    if rule.trips:
        named = [name for name, chart in charts.items() if chart.alarms[-rule.of_last :].any()]
        reason = f"{rule.count} of the last {rule.of_last} windows alarmed ({', '.join(named)})"
        return [Finding("control charts", "retrain", reason)], lines
    if len(alarms) and alarms[-1]:
        named = [name for name, chart in charts.items() if chart.alarms[-1]]
        reason = f"the latest window alarmed ({', '.join(named)})"
        return [Finding("control charts", "warn", reason)], lines
    return [], lines


def _chart_cell(chart: spc.Chart, i: int) -> str:
    value = chart.value[i]
    if np.isnan(value):
        return "-"
    return f"{value:.4f}{' **alarm**' if chart.alarms[i] else ''}"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


SECTIONS: tuple[Section, ...] = (decay, staleness, control)
