"""`make monitor`: one check of the prediction log, as a markdown report with figures
(plots.py) and a JSON verdict (``ok``, ``warn`` or ``retrain``, with every reason).

The check reads the windows of ``monitoring.window_days`` that end at ``now`` (the latest
is the current window; the earlier ones feed the control charts and the delayed labels),
and asks each detector for findings:

- data drift of the latest window's inputs against the champion's reference profile,
  and prediction drift (scores, decision rates) of each version and route against its
  own (drift.py, from counts the database bins: counts.py): a warning;
- champion and challenger on the same requests (shadow): score and decision agreement,
  reported (the decay detector judges each version and route on labels);
- upstream changes in the logged inputs (upstream.py): a warning, since retraining does
  not mend a producer's bug; a break of the schema from one row, a change within it
  (new to the reference) from ``drift.min_effect_category`` of the rows;
- decay: each served version and route on the latest window whose labels have matured
  (performance.py; newer windows are shown as provisional), against its holdout;
- staleness: the champion's training data ended more than ``max_model_age_days`` ago;
- control charts of the champion's windows (spc.py; a window under ``drift.min_rows``
  rows is not charted): the latest window alarming is a warning; ``control.alarms`` of
  the last ``control.of_last`` windows call for retraining.

A finding is a warning or calls for retraining; the verdict is the worst of them. Only
evidence that persists calls for retraining (decayed labels, k of n alarming windows,
age), so one noisy window does not retrain.

False alarms share one budget, ``monitoring.false_alarm_rate``: the chance that a check
of a stream where nothing changed finds anything. The control charts take one alarm per
``control.arl`` checks; data drift (Benjamini-Hochberg across features), prediction
drift (Bonferroni across versions and routes) and decay (Bonferroni across the windows,
versions and routes it tests) each take a third of the rest (``test_alpha``). Upstream
findings are counts of what the schema or the reference never saw, not tests.
bench/detection.py measures the rate all detectors reach together.
"""

from __future__ import annotations

import datetime as dt
import http.client
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from modelops.config import Settings
from modelops.io import write_json, write_text
from modelops.monitoring import counts, labels, performance, plots, reference, spc, upstream
from modelops.monitoring import drift as drifts
from modelops.monitoring.profile import Profile
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
    engine: sa.Engine
    now: pd.Timestamp
    outcomes: pd.DataFrame  # labels.load_outcomes, with a "window" column
    curves: dict[int, labels.ArrivalCurve]
    maturity: pd.DataFrame
    lineages: dict[str, dict[str, Any] | None]
    profiles: dict[str, Profile | None]
    out: Path  # the report's folder: its figures go there too
    metrics_url: str | None = None  # the service's /metrics: its refusals, per field

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

    @property
    def latest(self) -> counts.Window:
        """The latest window of the log, every answered route."""
        return counts.Window(self.current.to_pydatetime(), self.now.to_pydatetime())


Section = Callable[[Context], tuple[list[Finding], list[str]]]


def run(
    root: Path,
    settings: Settings,
    log_url: str,
    now: dt.datetime | None = None,
    out: Path = REPORTS,
    metrics_url: str | None = None,
) -> Verdict:
    """Check the window of ``log_url`` ending at ``now`` (default: this moment); write
    ``out``/report.md and ``out``/verdict.json; return the verdict. ``metrics_url``: the
    service's /metrics, whose refusals the report shows beside the log's issues."""
    engine = make_engine(log_url)
    findings: list[Finding] = []
    body: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    try:
        context = load(root, settings, engine, now, out, metrics_url)
        for section in SECTIONS:
            found, lines = section(context)
            findings += found
            body += [*lines, ""]
    finally:
        engine.dispose()
    level: Level = max((f.level for f in findings), key=LEVELS.index, default="ok")
    verdict = Verdict(
        level,
        findings,
        f"{context.current:%Y-%m-%d %H:%M}",
        f"{context.now:%Y-%m-%d %H:%M}",
        sorted(context.lineages),
    )
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


def load(
    root: Path,
    settings: Settings,
    engine: sa.Engine,
    now: dt.datetime | None,
    out: Path,
    metrics_url: str | None = None,
) -> Context:
    """The windows of the log ending at ``now`` and what is known of their versions."""
    monitoring = settings.monitoring
    end = pd.Timestamp(now or dt.datetime.now(dt.UTC))
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    start = end - pd.Timedelta(days=monitoring.window_days * HISTORY_WINDOWS)
    charted = spc.charted_features(monitoring.control, settings.data_schema)
    fields = list(dict.fromkeys([*settings.evaluation.costs.columns(), *charted]))
    outcomes = labels.load_outcomes(engine, start, end, fields=fields)
    outcomes["window"] = labels.window_of(outcomes["created_at"], end, monitoring.window_days)
    curves = labels.arrival_curves(outcomes, end)
    maturity = labels.window_maturity(outcomes, "window", end, curves, monitoring.labels)
    tags = sorted(outcomes["model_version"].unique())
    return Context(
        root,
        settings,
        engine,
        end,
        outcomes,
        curves,
        maturity,
        {tag: reference.lineage(root, settings, tag) for tag in tags},
        {tag: reference.profile(root, settings, tag) for tag in tags},
        out,
        metrics_url,
    )


def data_drift(context: Context) -> tuple[list[Finding], list[str]]:
    """The latest window's inputs against the champion's reference profile."""
    champion = context.champion
    profile = context.profiles.get(champion) if champion else None
    lines = ["## Data drift", ""]
    if champion is None or profile is None:
        return [], [*lines, "No champion with a reference profile: drift not checked."]
    chosen = context.settings.monitoring.drift
    result = drifts.compare(
        profile,
        counts.log_counts(context.engine, profile, context.latest),
        chosen,
        context.settings.monitoring.test_alpha,
    )
    lines += [
        f"{result.rows:,} answered requests against {champion}'s training rows: chi-square "
        f"per feature, Benjamini-Hochberg at FDR {result.fdr:.3g}; drifted only when the "
        f"effect reaches its minimum ({chosen.min_effect:g} SD for numbers, "
        f"{chosen.min_effect_category:g} of rows moved for categories)."
        + ("" if result.judged else f" Under {chosen.min_rows} rows: reported, not judged."),
        "",
        "| feature | q-value | effect [interval] | minimum | drifted | most moved |",
        "|---|---:|---|---:|---|---|",
    ]
    for item in sorted(result.features, key=lambda f: (not f.drifted, f.p_value)):
        lines.append(
            f"| {item.feature} | {_number(item.q_value, '.2g')} | {_effect(item.effect)} "
            f"| {_number(item.effect.minimum if item.effect else None, 'g')} "
            f"| {'**yes**' if item.drifted else 'no'} | {_moved(item)} |"
        )
    if result.features:
        plots.drift_png(result, context.out / "drift.png")
        lines += ["", "![each feature's effect against its minimum](drift.png)"]
    if not result.drifted:
        return [], lines
    named = ", ".join(f"{f.feature} ({_effect(f.effect)})" for f in result.features if f.drifted)
    return [
        Finding("data drift", "warn", f"{len(result.drifted)} features drifted: {named}")
    ], lines


def prediction_drift(context: Context) -> tuple[list[Finding], list[str]]:
    """Each version's and route's scores and decisions against its own holdout."""
    lines = [
        "## Prediction drift",
        "",
        "| version | route | rows | score p-value | score effect | decisions: holdout → window |",
        "|---|---|---:|---:|---|---|",
    ]
    findings = []
    for result, rows in _prediction_drifts(context):
        score = result.score
        rates = ", ".join(f"{d} {a:.1%} → {b:.1%}" for d, (a, b) in result.decision_rates.items())
        lines.append(
            f"| {result.model_version} | {result.route} | {rows:,} "
            f"| {_number(score.p_value, '.2g')} | {_effect(score.effect)} | {rates} |"
        )
        if score.drifted:
            reason = (
                f"{result.model_version} ({result.route}) scores moved "
                f"{_effect(score.effect)} from its holdout's"
            )
            findings.append(Finding("prediction drift", "warn", reason))
    return findings, lines


def _prediction_drifts(context: Context) -> list[tuple[drifts.PredictionDrift, int]]:
    """Each version's routes in the latest window, binned by its own profile, each
    tested at its share of the budget."""
    chosen, window = context.settings.monitoring.drift, context.latest
    binned = [
        (profile, found)
        for tag, profile in sorted(context.profiles.items())
        if profile is not None
        for found in counts.log_prediction_counts(context.engine, profile, window.start, window.end)
        if found.model_version == tag
    ]
    alpha = context.settings.monitoring.test_alpha / max(len(binned), 1)
    return [
        (drifts.prediction_drift(profile, found, chosen, alpha), found.rows)
        for profile, found in binned
    ]


def agreement(context: Context) -> tuple[list[Finding], list[str]]:
    """Champion and challenger on the same live requests of the latest window (shadow
    scores every request; a canary or A/B split scores each request once, so its
    comparison is the performance table's, per route)."""
    latest = context.outcomes[context.outcomes["window"] == context.current]
    champion = latest[latest["route"] == "champion"]
    other = latest[latest["route"] == "shadow"]
    lines = ["## Champion and challenger", ""]
    both = champion.merge(other, on="request_id", suffixes=("_a", "_b"))
    if both.empty:
        return [], [*lines, "No request in the latest window was scored by two versions."]
    found = []
    for tag in (both["model_version_a"].iloc[0], both["model_version_b"].iloc[0]):
        lineage = context.lineages.get(tag)
        found.append(lineage["decision"]["threshold"] if lineage else None)
    a, b = both["score_a"].to_numpy(), both["score_b"].to_numpy()
    rank = float(pd.Series(a).corr(pd.Series(b), method="spearman"))
    text = (
        f"{both['model_version_a'].iloc[0]} (champion) and {both['model_version_b'].iloc[0]} "
        f"(shadow) on the {len(both):,} requests both scored: score rank correlation "
        f"{rank:.3f}, mean |score difference| {np.mean(np.abs(a - b)):.4f}"
    )
    if None not in found:
        same = float(np.mean((a >= found[0]) == (b >= found[1])))
        text += f", review decisions agree on {same:.1%} (each version's own threshold)"
    return [], [*lines, text + "."]


def upstream_changes(context: Context) -> tuple[list[Finding], list[str]]:
    """Changes in what the producer sends, named and counted."""
    champion = context.champion
    profile = context.profiles.get(champion) if champion else None
    lines = ["## Upstream changes", "", *_refusals(context.metrics_url)]
    if profile is None:
        return [], [*lines, "No champion with a reference profile: the log is not checked."]
    result = upstream.log_upstream(
        context.engine, context.settings.data_schema, profile, context.latest
    )
    if not result.issues:
        return [], [*lines, f"None in {result.rows:,} logged requests."]
    lines += ["| field | issue | severity | rows | share | seen |", "|---|---|---|---:|---:|---|"]
    lines += [
        f"| {i.field} | {i.issue} | {i.severity} | {i.rows:,} | {i.share:.2%} | {i.detail} |"
        for i in result.issues
    ]
    # A break of the contract counts from one row; within the contract, only a change as
    # large as drift's categorical minimum (a live value beyond the reference's range is
    # no news on its own: some always lie beyond a sample's extremes).
    least = context.settings.monitoring.drift.min_effect_category
    notable = [i for i in result.issues if i.severity == "schema" or i.share >= least]
    if not notable:
        return [], lines
    named = ", ".join(f"{i.field} {i.issue} ({i.share:.1%})" for i in notable)
    return [Finding("upstream", "warn", named)], lines


def _refusals(url: str | None) -> list[str]:
    """What the service refused since it started (the log holds none of it): shown, not
    judged, since its counters do not follow the window (alert on their rate in
    Prometheus)."""
    if url is None:
        return []
    try:
        found = upstream.service_refusals(url)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return [f"The service's refusals: could not read {redacted(url)} ({exc}).", ""]
    requests = ", ".join(f"{e} {s}: {n:,.0f}" for (e, s), n in sorted(found.requests.items()))
    most = sorted(found.fields.items(), key=lambda item: -item[1])
    fields = ", ".join(f"{field} {n:,.0f}" for field, n in most)
    return [
        f"Refused by the service since it started (never logged): requests "
        f"{requests or 'none'}; fields at fault {fields or 'none'}.",
        "",
    ]


def decay(context: Context) -> tuple[list[Finding], list[str]]:
    """Live performance of each version and route: on the latest mature window, judged;
    on newer windows, provisional (a warning at most). Each tested against its floor at
    its share of the budget."""
    settings = context.settings
    lines = ["## Performance from delayed labels", ""]
    mature = context.maturity.index[context.maturity["mature"]]
    judged = mature.max() if len(mature) else None
    windows = [w for w in context.maturity.index if judged is None or w >= judged]
    if not windows:
        return [], [*lines, "No labelled window yet."]
    holdout = {
        tag: value
        for tag, found in context.lineages.items()
        if found and (value := performance.holdout_metric(found)) is not None
    }
    results = [
        (window, result)
        for window in windows
        for result in performance.live_performance(
            context.outcomes[context.outcomes["window"] == window],
            context.now,
            context.curves,
            settings,
            holdout,
        )
    ]
    tested = sum(
        result.floor_p is not None and result.status != performance.Status.TOO_FEW_POSITIVES
        for _, result in results
    )  # what can become a finding
    alpha = settings.monitoring.test_alpha / max(tested, 1)
    lines += [
        f"Judged on the latest window whose labels are expected at least "
        f"{settings.monitoring.labels.min_maturity:.0%} in"
        + ("" if judged is not None else " (none yet)")
        + f"; newer windows are provisional. Intervals "
        f"{settings.evaluation.bootstrap.confidence:.0%} bootstrap; below the floor: "
        f"one-sided p under {alpha:.2g} (the live and holdout errors together).",
        "",
        "| window | version | route | rows | labelled | positives | labels in | status "
        "| ROC-AUC | holdout | floor | p |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    findings = []
    for window, result in results:
        auc = result.metrics.get("roc_auc")
        shown = "n/a" if auc is None else f"{auc.value:.3f} [{auc.ci_low:.3f}, {auc.ci_high:.3f}]"
        lines.append(
            f"| {window:%Y-%m-%d} | {result.model_version} | {result.route} | {result.rows:,} "
            f"| {result.labelled:,} | {result.positives:,} | {result.completeness:.0%} "
            f"| {result.status} | {shown} | {_number(result.holdout_auc)} "
            f"| {_number(result.auc_floor)} | {_number(result.floor_p, '.2g')} |"
        )
        found = _decayed(result, window, alpha)
        if found is not None:
            findings.append(found)
    return findings, lines


def _decayed(
    result: performance.LivePerformance, window: pd.Timestamp, alpha: float
) -> Finding | None:
    """Retrain when a judged window decayed; warn when a provisional one is below the
    floor already (its labels are not all in: a warning, not a verdict)."""
    auc = result.metrics.get("roc_auc")
    if auc is None or not result.below_floor(alpha):
        return None
    measured = (
        f"{result.model_version} ({result.route}) ROC-AUC {auc.value:.3f} "
        f"[{auc.ci_low:.3f}, {auc.ci_high:.3f}] in the window from {window:%Y-%m-%d} is below "
        f"its holdout {_number(result.holdout_auc)} less monitoring.max_auc_drop "
        f"(p {result.floor_p:.2g})"
    )
    if result.decayed(alpha):
        return Finding("decay", "retrain", measured)
    if result.status == performance.Status.PROVISIONAL:
        return Finding("decay", "warn", f"{measured} (provisional: {result.completeness:.0%} in)")
    return None


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
    charted = spc.charted_features(settings.monitoring.control, settings.data_schema)
    feature_means, feature_rows = spc.window_means(served, "window", charted)
    means, rows = means.join(feature_means), rows.join(feature_rows)
    means = means.where(rows >= settings.monitoring.drift.min_rows)  # too few: not judged
    charts = spc.control_charts(
        means, rows, in_control(found, context.profiles.get(champion)), settings.monitoring.control
    )
    alarms = spc.alarming(charts)
    chosen = settings.monitoring.control
    rule = spc.k_of_n(alarms, chosen.alarms, chosen.of_last)
    lines += [
        f"{champion}: CUSUM per statistic, calibrated together to one false alarm per "
        f"{chosen.arl:g} checks; {rule.count} of the last "
        f"{rule.of_last} windows alarmed ({rule.alarms} call for retraining).",
        "",
        "| window | " + " | ".join(charts) + " |",
        "|---|" + "---:|" * len(charts),
    ]
    for i, window in enumerate(means.index):
        cells = [_chart_cell(chart, i) for chart in charts.values()]
        lines.append(f"| {window:%Y-%m-%d} | " + " | ".join(cells) + " |")
    if charts:
        plots.charts_png(charts, context.out / "charts.png")
        lines += ["", "![the CUSUM sums of each chart and their limit](charts.png)"]
    if rule.trips:
        named = [name for name, chart in charts.items() if chart.alarms[-rule.of_last :].any()]
        reason = f"{rule.count} of the last {rule.of_last} windows alarmed ({', '.join(named)})"
        return [Finding("control charts", "retrain", reason)], lines
    if len(alarms) and alarms[-1]:
        named = [name for name, chart in charts.items() if chart.alarms[-1]]
        reason = f"the latest window alarmed ({', '.join(named)})"
        return [Finding("control charts", "warn", reason)], lines
    return [], lines


def in_control(lineage: dict[str, Any], profile: Profile | None) -> dict[str, spc.InControl]:
    """What each chart expects of a window: the holdout's positive share and the review
    rate from the lineage; the holdout's mean score and the training rows' feature means
    from the profile. Beyond each window's own sampling noise, a chart allows the week-to-
    week spread the training data showed, and the reference's own sampling error (the
    same in every window: spc.py allows for a CUSUM adding it up)."""
    rows = lineage["data"]["holdout"]["rows"]
    positive_share = lineage["data"]["holdout"]["positives"] / rows
    expected = {
        spc.POSITIVE_RATE: spc.InControl.rate(positive_share, rows),
        spc.FLAG_RATE: spc.InControl.rate(lineage["decision"]["review_rate"], rows),
    }
    if profile is None:
        return expected
    for name, shape in [(spc.MEAN_SCORE, profile.score), *profile.features.items()]:
        if shape.mean is not None and shape.sd is not None:
            reference = shape.sd / np.sqrt(max(shape.rows - shape.nulls, 1))
            expected[name] = spc.InControl(shape.mean, shape.sd, shape.between_sd or 0.0, reference)
    return expected


def _chart_cell(chart: spc.Chart, i: int) -> str:
    value = chart.value[i]
    if np.isnan(value):
        return "-"
    return f"{value:.4f}{' **alarm**' if chart.alarms[i] else ''}"


def _number(value: float | None, form: str = ".3f") -> str:
    return "n/a" if value is None else format(value, form)


def _effect(effect: drifts.Effect | None) -> str:
    if effect is None:
        return "n/a"
    unit = " SD" if effect.measure == "wasserstein_sd" else ""
    return f"{effect.estimate:.3f}{unit} [{effect.low:.3f}, {effect.high:.3f}]"


def _moved(item: drifts.FeatureDrift) -> str:
    return ", ".join(
        f"{m.label} {m.reference_share:.1%} → {m.current_share:.1%}" for m in item.moved[:2]
    )


SECTIONS: tuple[Section, ...] = (
    data_drift,
    prediction_drift,
    agreement,
    upstream_changes,
    decay,
    staleness,
    control,
)
