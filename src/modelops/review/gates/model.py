"""Gates on the model's holdout performance: floors, the champion, calibration, the
baselines and slices.

Relative gates compare challenger and champion on the same holdout rows and the same
bootstrap resamples, and fail only when a regression beyond the tolerance is credible:
even the best case of the paired interval of the improvement is below ``-tolerance``.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from modelops.metric_registry import METRICS, MetricName, SliceMetricName
from modelops.review.gates.base import Gate, GateKind, Measured, Rule, listed
from modelops.training.metrics import Estimate
from modelops.training.metrics import improvement as signed

CHALLENGER, CHAMPION = "challenger", "champion"
NO_MODEL = "no fresh model to judge"


def improvement(measured: Measured, metric: str) -> Estimate | None:
    """Challenger minus champion (paired), signed so that positive means better; None
    without a champion."""
    c = measured.comparison
    if c is None or CHAMPION not in c.result.points:
        return None
    return signed(c.result.difference(CHALLENGER, CHAMPION, metric), metric)


def no_regression(measured: Measured, name: str, metric: str, tolerance: float) -> Gate:
    """Fails when a regression beyond ``tolerance`` is credible."""
    c, d = measured.comparison, improvement(measured, metric)
    if c is None or d is None:
        return Gate(name, "skipped", reason="no champion to compare with")
    points, m = c.result.points, METRICS[metric]
    rule = (
        f"{m.title()} {m.text(points[CHAMPION][metric])} → {m.text(points[CHALLENGER][metric])}"
        f", improvement {d.value:+.4g} [{d.ci_low:+.4g}, {d.ci_high:+.4g}]: a regression "
        f"beyond {tolerance:g} must not be credible"
    )
    ok = d.ci_high >= -tolerance
    return Gate(name, "pass" if ok else "fail", d.value, -tolerance, d.ci_low, d.ci_high, rule)


class _MetricLimits(GateKind):
    """A limit per metric; params.yaml writes the metrics directly (``roc_auc: 0.8``)."""

    limits: dict[MetricName, float] = Field(default_factory=dict)
    tolerances: ClassVar[bool] = True  # limits are tolerances or margins: never negative

    @model_validator(mode="after")
    def _not_negative(self) -> _MetricLimits:
        for metric, limit in self.limits.items():
            if self.tolerances and limit < 0:
                raise ValueError(f"{metric}: must be >= 0, got {limit}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        return {"limits": data} if isinstance(data, dict) and "limits" not in data else data


class Floors(_MetricLimits):
    """Absolute floors (ceilings for lower-is-better metrics) on the point estimate. A
    floor the champion misses too on the same rows (the data got harder: a new tactic,
    a new population) does not block its replacement: the champion gates judge the
    challenger against it instead."""

    needs: ClassVar[str] = "comparison"
    tolerances: ClassVar[bool] = False

    def judge(self, measured: Measured) -> list[Gate]:
        c = measured.comparison
        gates = []
        for metric, limit in self.limits.items():
            name = f"floor:{metric}"
            if c is None:
                gates.append(Gate(name, "skipped", reason=NO_MODEL))
                continue
            points = c.summary["metrics"]
            e = points[CHALLENGER][metric]
            up = METRICS[metric].higher_is_better

            def meets(value: float, up: bool = up, limit: float = limit) -> bool:
                return value >= limit if up else value <= limit

            reason = f"{metric} must be {'at least' if up else 'at most'} {limit:g}"
            ok = meets(e["value"])
            champion = points.get(CHAMPION, {}).get(metric)
            if not ok and champion is not None and not meets(champion["value"]):
                ok = True
                reason += (
                    f"; waived: the champion misses it too on these rows "
                    f"({champion['value']:.4g}), the champion gates judge the difference"
                )
            gates.append(
                Gate(name, "pass" if ok else "fail", e["value"], limit, e["ci_low"],
                     e["ci_high"], reason)
            )  # fmt: skip
        return gates

    def rules(self) -> list[Rule]:
        return [
            Rule("floor:<metric>", "the point estimate is below the floor (above, for a "
                 "lower-is-better metric), unless the champion's is too on the same rows",
                 listed(self.limits) or "none")
        ]  # fmt: skip


class Champion(_MetricLimits):
    """Tolerated regression against the base branch's model on the same rows."""

    needs: ClassVar[str] = "comparison"

    def judge(self, measured: Measured) -> list[Gate]:
        return [
            no_regression(measured, f"champion:{metric}", metric, tolerance)
            for metric, tolerance in self.limits.items()
        ]

    def rules(self) -> list[Rule]:
        return [
            Rule("champion:<metric>", "a regression beyond the tolerance is credible: even "
                 "the best case of the paired interval (PR − base) is worse than −tolerance",
                 listed(self.limits))
        ]  # fmt: skip


class Calibration(GateKind):
    """The scores stay probabilities: log loss and Brier score against the champion (as
    the champion gates), and fixed thresholds in desired-state files still flag about
    the share they were set for."""

    needs: ClassVar[str] = "comparison"

    log_loss: float = Field(0.005, ge=0)
    brier: float = Field(0.001, ge=0)
    max_rate_ratio: float = Field(2.0, gt=1)  # flag rate at a fixed threshold: at most x this
    min_flagged: int = Field(20, ge=1)  # fewer flagged rows on both sides: too few to judge

    def judge(self, measured: Measured) -> list[Gate]:
        gates = [
            no_regression(measured, f"calibration:{metric}", metric, tolerance)
            for metric, tolerance in (("log_loss", self.log_loss), ("brier", self.brier))
        ]
        for path, thresholds in measured.fixed_thresholds.items():
            for action, threshold in thresholds.items():
                gates.append(self._fixed(measured, path, action, threshold))
        return gates

    def _fixed(self, measured: Measured, path: str, action: str, threshold: float) -> Gate:
        """The flag rate at a desired state's fixed threshold, against the champion's rate
        there (or the rate the threshold is meant for, without a champion)."""
        name = f"fixed_threshold:{path}:{action}"
        c = measured.comparison
        if c is None:
            return Gate(name, "skipped", reason=NO_MODEL)
        ours = float(np.mean(c.scored[CHALLENGER].score >= threshold))
        if CHAMPION in c.scored:
            theirs, against = float(np.mean(c.scored[CHAMPION].score >= threshold)), "the champion"
        else:
            theirs, against = c.summary["holdout"][f"{action}_rate"], f"evaluation.{action}_rate"
        rows = c.summary["holdout"]["rows"]
        if max(ours, theirs) * rows < self.min_flagged:
            return Gate(name, "skipped", reason=f"fewer than {self.min_flagged} rows at or "
                        f"above {threshold:g} in {path}: too few to judge")  # fmt: skip
        ratio = max(ours, 1 / rows) / max(theirs, 1 / rows)
        ok = 1 / self.max_rate_ratio <= ratio <= self.max_rate_ratio
        return Gate(
            name, "pass" if ok else "fail", ratio, self.max_rate_ratio,
            reason=f"{path} fixes the {action} threshold at {threshold:g}: this model puts "
            f"{ours:.2%} of the holdout at or above it, {against} {theirs:.2%}; the ratio must "
            f"stay within a factor of {self.max_rate_ratio:g} (retune the threshold in that file)",
        )  # fmt: skip

    def rules(self) -> list[Rule]:
        return [
            Rule("calibration:log_loss, calibration:brier", "a calibration regression beyond "
                 "the tolerance is credible (paired interval, as the champion gates)",
                 f"log loss {self.log_loss:g}, Brier {self.brier:g}"),
            Rule("fixed_threshold:<file>:<action>", "a desired state in deploy/environments/ "
                 "fixes a threshold, and the share of the holdout this model flags there differs "
                 "from the champion's by more than a factor of max_rate_ratio",
                 f"factor {self.max_rate_ratio:g}"),
        ]  # fmt: skip


class Baselines(_MetricLimits):
    """Must beat the dummy and logistic baselines by a margin (interval lower bound)."""

    needs: ClassVar[str] = "baselines"

    def judge(self, measured: Measured) -> list[Gate]:
        if measured.baselines is None:
            return [Gate("baselines", "skipped", reason=NO_MODEL)] if self.limits else []
        gates = []
        for baseline, report in measured.baselines.items():
            for metric, margin in self.limits.items():
                lift = report["lift"][metric]
                gates.append(
                    Gate(f"baseline:{baseline}:{metric}", "pass" if lift["ci_low"] >= margin
                         else "fail", lift["value"], margin, lift["ci_low"], lift["ci_high"],
                         f"improvement in {metric}: must beat {baseline} by at least "
                         f"{margin:g} (interval lower bound)")
                )  # fmt: skip
        return gates

    def rules(self) -> list[Rule]:
        return [
            Rule("baseline:<name>:<metric>", "the lower end of the lift over the dummy or "
                 "logistic baseline (evaluate stage, same holdout) is below the margin",
                 listed(self.limits))
        ]  # fmt: skip


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (scipy offers only Benjamini-Hochberg/Yekutieli)."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=p_values.__getitem__)):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


class Slices(GateKind):
    """No slice may fall credibly more than ``tolerance`` below the champion.

    Each slice's paired improvement is bootstrapped on the headline's resamples. Its
    one-sided p-value (normal approximation with the bootstrap's standard error) tests
    "the regression is at most ``tolerance``"; Holm's correction across the judged
    slices keeps the chance that any slice of an equally good model fails at the
    headline's one-sided level. Holm, not Benjamini-Hochberg: one failing slice fails
    the verdict, so the error that matters is the family-wise one, and Holm controls it
    under any dependence (slices of different columns share rows)."""

    needs: ClassVar[str] = "comparison"

    metric: SliceMetricName = "roc_auc"
    tolerance: float = Field(0.03, ge=0)
    min_positives: int = Field(50, ge=1)

    def judge(self, measured: Measured) -> list[Gate]:
        c = measured.comparison
        if c is None or CHAMPION not in c.result.points:
            reason = NO_MODEL if c is None else "no champion to compare with"
            return [Gate(f"slices:{self.metric}", "skipped", reason=reason)]
        gates: list[Gate] = []
        judged: list[tuple[str, Estimate, float]] = []
        for key, entry in slice_entries(c.summary["slices"]):
            name = f"slice:{key}:{self.metric}"
            d = entry.get("improvement")
            if d is None:
                gates.append(Gate(name, "skipped", reason="metric undefined: one class only"))
            elif entry["positives"] < self.min_positives:
                gates.append(Gate(name, "skipped", d["value"], -self.tolerance, d["ci_low"],
                                  d["ci_high"], f"fewer than {self.min_positives} positives: "
                                  "reported, too few to judge"))  # fmt: skip
            else:
                estimate = Estimate(d["value"], d["ci_low"], d["ci_high"])
                judged.append((name, estimate, self._p_value(estimate, c.slice_draws[key])))
        alpha = (1 - c.summary["holdout"]["confidence"]) / 2
        for (name, e, p), adjusted in zip(judged, holm([p for *_, p in judged]), strict=True):
            gates.append(
                Gate(name, "fail" if adjusted <= alpha else "pass", e.value, -self.tolerance,
                     e.ci_low, e.ci_high, f"a regression beyond {self.tolerance:g} must not be "
                     f"credible: p = {p:.2g}, Holm-adjusted {adjusted:.2g} (fails at ≤ "
                     f"{alpha:g}, over {len(judged)} slices)")
            )  # fmt: skip
        return gates

    def _p_value(self, e: Estimate, draws: np.ndarray) -> float:
        """One-sided p-value of "the improvement is at least -tolerance"."""
        se = float(np.nanstd(draws))
        if se == 0:
            return 0.0 if e.value < -self.tolerance else 1.0
        return NormalDist().cdf((e.value + self.tolerance) / se)

    def rules(self) -> list[Rule]:
        return [
            Rule(f"slice:<column>=<value>:{self.metric}", "a slice's regression beyond the "
                 "tolerance is credible after Holm's correction across slices (paired "
                 f"bootstrap); slices with fewer than {self.min_positives} positives are "
                 "reported, not judged", f"{self.metric} {self.tolerance:g}")
        ]  # fmt: skip


def slice_entries(slices: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(column=value, entry)`` for every slice of the comparison."""
    return [
        (f"{group}={value}", entry)
        for group, values in slices["groups"].items()
        for value, entry in values.items()
    ]
