"""Merge gates: judge a challenger model and write a verdict.

Every gate reports its value, threshold, interval and status. A gate that cannot be
evaluated (no champion on the first run, say) is ``skipped`` with the reason, never
silently passed. Relative gates compare challenger and champion on the same holdout
rows and the same bootstrap resamples, and fail only when a regression beyond the
tolerance is credible: even the upper end of the improvement's interval is worse than
``-tolerance``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from modelops.config import GateSettings
from modelops.training.metrics import HIGHER_IS_BETTER, BootstrapResult, Estimate

Status = Literal["pass", "fail", "skipped"]


@dataclass(frozen=True)
class Gate:
    """The outcome of one gate."""

    name: str
    status: Status
    value: float | None = None
    threshold: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str = ""


def _improvement(estimate: Estimate, metric: str) -> Estimate:
    """Re-sign a difference so that positive always means better."""
    if HIGHER_IS_BETTER[metric]:
        return estimate
    return Estimate(-estimate.value, -estimate.ci_high, -estimate.ci_low)


def floor_gates(metrics: dict[str, dict[str, float]], floors: dict[str, float]) -> list[Gate]:
    """Absolute floors (ceilings for lower-is-better metrics) on the point estimate."""
    gates = []
    for metric, limit in floors.items():
        e = metrics[metric]
        ok = e["value"] >= limit if HIGHER_IS_BETTER[metric] else e["value"] <= limit
        word = "at least" if HIGHER_IS_BETTER[metric] else "at most"
        gates.append(
            Gate(f"floor:{metric}", "pass" if ok else "fail", e["value"], limit,
                 e["ci_low"], e["ci_high"], f"{metric} must be {word} {limit}")
        )  # fmt: skip
    return gates


def relative_gates(
    result: BootstrapResult,
    challenger: str,
    reference: str | None,
    limits: dict[str, float],
    *,
    kind: Literal["champion", "baseline"],
) -> list[Gate]:
    """Paired comparison with a reference model on shared resamples.

    ``champion``: fail when the improvement's upper bound is below ``-tolerance``.
    ``baseline``: pass only when the improvement's lower bound reaches the margin.
    """
    gates = []
    for metric, limit in limits.items():
        name = f"champion:{metric}" if kind == "champion" else f"baseline:{reference}:{metric}"
        if reference is None:
            gates.append(Gate(name, "skipped", reason=f"no {kind} to compare with"))
            continue
        diff = _improvement(result.difference(challenger, reference, metric), metric)
        if kind == "champion":
            ok, threshold = diff.ci_high >= -limit, -limit
            rule = f"a regression beyond {limit} must not be credible"
        else:
            ok, threshold = diff.ci_low >= limit, limit
            rule = f"must beat {reference} by at least {limit} (interval lower bound)"
        gates.append(
            Gate(name, "pass" if ok else "fail", diff.value, threshold, diff.ci_low,
                 diff.ci_high, f"improvement in {metric}: {rule}")
        )  # fmt: skip
    return gates


def slice_gates(
    challenger: dict[str, Any] | None,
    champion: dict[str, Any] | None,
    metric: str,
    tolerance: float,
    min_positives: int,
) -> list[Gate]:
    """No slice may fall more than ``tolerance`` below the champion on ``metric``."""
    if champion is None or challenger is None:
        return [Gate(f"slices:{metric}", "skipped", reason="no champion slices to compare with")]
    gates = []
    for group, values in challenger.items():
        for value, ours in values.items():
            theirs = champion.get(group, {}).get(value)
            name = f"slice:{group}={value}:{metric}"
            if theirs is None or ours.get(metric) is None or theirs.get(metric) is None:
                gates.append(Gate(name, "skipped", reason="slice missing or metric undefined"))
                continue
            if min(ours["positives"], theirs["positives"]) < min_positives:
                gates.append(Gate(name, "skipped", reason=f"fewer than {min_positives} positives"))
                continue
            drop = theirs[metric] - ours[metric]
            gates.append(
                Gate(name, "pass" if drop <= tolerance else "fail", ours[metric],
                     theirs[metric] - tolerance, reason=f"at most {tolerance} below the champion")
            )  # fmt: skip
    return gates


def pipeline_gates(outcome: dict[str, Any] | None) -> list[Gate]:
    """Data validation and the rest of the pipeline, from ``modelops repro``'s record."""
    if outcome is None:
        reason = "pipeline outcome not recorded (run `make pr-repro`)"
        return [Gate("data_validation", "skipped", reason=reason)]
    stage, errors = outcome.get("failed_stage"), outcome.get("errors") or []
    message = errors[0] if errors else f"exit code {outcome.get('exit_code')}"
    if outcome["status"] == "passed":
        return [Gate("data_validation", "pass", reason="the data passed validation")]
    if stage == "validate":
        return [Gate("data_validation", "fail", reason=message)]
    return [
        Gate("data_validation", "pass", reason="the data passed validation"),
        Gate("pipeline", "fail", reason=f"stage '{stage or '?'}' failed: {message}"),
    ]


def behaviour_gate(junit_xml: Path) -> Gate:
    """The behavioural model tests (``make behaviour``), from their JUnit XML."""
    if not junit_xml.exists():
        return Gate("behaviour", "skipped", reason="behavioural tests not run (`make behaviour`)")
    cases = ET.parse(junit_xml).getroot().iter("testcase")
    failed, passed = [], 0
    for case in cases:
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(case.get("name", "?"))
        elif case.find("skipped") is None:
            passed += 1
    if failed:
        return Gate("behaviour", "fail", float(len(failed)), 0.0,
                    reason="failed: " + ", ".join(failed))  # fmt: skip
    if passed == 0:
        return Gate("behaviour", "skipped", reason="no behavioural test ran")
    return Gate("behaviour", "pass", 0.0, 0.0, reason=f"{passed} behavioural tests passed")


def budget_gates(measured: dict[str, float], budgets: dict[str, float]) -> list[Gate]:
    """Serving budgets: measured values must not exceed them."""
    return [
        Gate(
            f"budget:{name}",
            "pass" if measured[name] <= limit else "fail",
            measured[name],
            limit,
            reason=f"{name} must be at most {limit}",
        )
        for name, limit in budgets.items()
    ]


def judge(
    result: BootstrapResult | None,
    summary: dict[str, Any] | None,
    outcome: dict[str, Any] | None,
    junit_xml: Path,
    settings: GateSettings,
) -> list[Gate]:
    """Every gate. Without a fresh model (the pipeline failed) the model gates are
    skipped with that reason; the failing pipeline gate already fails the verdict."""
    gates = pipeline_gates(outcome)
    if result is None or summary is None:
        if outcome is None:  # nothing ran and there are no outputs to judge
            reason = (
                "no model to judge: the pipeline did not run (see the job log; "
                "`make data` fails when the DVC remote cannot be reached)"
            )
            return [*gates, Gate("pipeline", "fail", reason=reason)]
        stage = outcome.get("failed_stage") or "?"
        reason = f"no fresh model to judge: the pipeline failed at '{stage}'"
        return [*gates, Gate("model", "skipped", reason=reason)]
    gates.append(behaviour_gate(junit_xml))
    metrics = summary["metrics"]
    champion = "champion" if "champion" in metrics else None
    floors, tolerances, margins = (
        {str(k): v for k, v in limits.items()}
        for limits in (settings.floors, settings.champion, settings.baselines)
    )
    gates += floor_gates(metrics["challenger"], floors)
    gates += relative_gates(result, "challenger", champion, tolerances, kind="champion")
    for baseline in ("dummy", "logistic"):
        ref = baseline if baseline in metrics else None
        gates += relative_gates(result, "challenger", ref, margins, kind="baseline")
    slices = summary["slices"]
    s = settings.slices
    gates += slice_gates(slices["challenger"], slices.get("champion"), s.metric, s.tolerance,
                         s.min_positives)  # fmt: skip
    budgets = settings.budgets.model_dump(exclude={"latency_calls"})
    gates += budget_gates(summary["budgets"]["challenger"], budgets)
    return gates


def verdict(gates: list[Gate]) -> dict[str, Any]:
    """The machine-readable verdict: PASS unless any gate failed."""
    failed = [g.name for g in gates if g.status == "fail"]
    return {
        "verdict": "FAIL" if failed else "PASS",
        "failed": failed,
        "skipped": [g.name for g in gates if g.status == "skipped"],
        "gates": [asdict(g) for g in gates],
    }
