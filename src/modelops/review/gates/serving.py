"""Gates on the model as it will be served: the service answers what the pipeline
measured (parity), within the latency and size budgets."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from modelops.review.gates.base import Gate, GateKind, Measured, Rule, missing

CHALLENGER = "challenger"


class Parity(GateKind):
    """The Bento built from the challenger, served on 127.0.0.1, gives the offline holdout
    scores for a seeded sample of rows (plus every category and a missing value of each
    nullable column), through both the one-row and the batch endpoint, and decides as the
    thresholds say."""

    needs: ClassVar[str] = "parity"

    rows: int = Field(300, ge=10, le=5000)  # holdout rows replayed (a few hundred)
    seed: int = 0
    tolerance: float = Field(1e-9, ge=0)  # |served - offline| allowed per score

    def judge(self, measured: Measured) -> list[Gate]:
        p, names = measured.parity, ("parity:scores", "parity:decisions")
        if p is None:
            return [missing(n, "serving parity not measured (`make parity`)", measured)
                    for n in names]  # fmt: skip
        if p["status"] != "measured":
            reason = f"the served model could not be checked: {p.get('error')}"
            return [Gate(n, "fail", reason=reason) for n in names]
        where = f"{p['rows']:,} rows through {' and '.join(p['endpoints'])}"
        worst = _examples(p["examples"])
        scores = p["score_mismatches"]
        decisions = p["decision_mismatches"]
        return [
            Gate("parity:scores", "fail" if scores else "pass", p["max_abs_diff"],
                 p["tolerance"], reason=f"{scores:,} of {where} differ from the offline score "
                 f"by more than {p['tolerance']:g}" + (f"; e.g. {worst}" if scores else "")),
            Gate("parity:decisions", "fail" if decisions else "pass", float(decisions), 0.0,
                 reason=f"{decisions:,} of {where} got another decision than the thresholds "
                 "give for the offline score" + (f"; e.g. {worst}" if decisions else "")),
        ]  # fmt: skip

    def rules(self) -> list[Rule]:
        return [
            Rule("parity:scores, parity:decisions", "a served score differs from the offline "
                 "holdout score by more than the tolerance, or a served decision differs from "
                 "the thresholds' (Bento of the challenger on 127.0.0.1, both endpoints)",
                 f"{self.rows} rows, tolerance {self.tolerance:g}")
        ]  # fmt: skip


def _examples(examples: list[dict[str, Any]], limit: int = 3) -> str:
    return "; ".join(
        f"row {e['row']}{f' with {changed}' if (changed := e.get('changed')) else ''} "
        f"({e['endpoint']}): offline {e['offline']:.6g}, served {e['served']:.6g}, "
        f"decision {e['expected_decision']} → {e['served_decision']}"
        for e in examples[:limit]
    )


class Budgets(GateKind):
    """Serving budgets the challenger must fit."""

    needs: ClassVar[str] = "comparison"

    latency_ms_p50: float = Field(25.0, gt=0)  # one-row predict_proba, median, one thread
    size_mb: float = Field(20.0, gt=0)  # the fitted model file
    latency_calls: int = Field(200, ge=20)  # how many one-row calls the median is over

    def judge(self, measured: Measured) -> list[Gate]:
        c = measured.comparison
        limits = {"latency_ms_p50": self.latency_ms_p50, "size_mb": self.size_mb}
        if c is None:
            return [Gate(f"budget:{n}", "skipped", reason="no fresh model") for n in limits]
        got = c.summary["budgets"][CHALLENGER]
        return [
            Gate(f"budget:{name}", "pass" if got[name] <= limit else "fail", got[name], limit,
                 reason=f"{name} must be at most {limit:g}")
            for name, limit in limits.items()
        ]  # fmt: skip

    def rules(self) -> list[Rule]:
        return [
            Rule("budget:latency_ms_p50, budget:size_mb", f"one-row `predict_proba` (median of "
                 f"{self.latency_calls} calls, one thread) or the model file exceeds the budget",
                 f"{self.latency_ms_p50:g} ms, {self.size_mb:g} MB")
        ]  # fmt: skip
