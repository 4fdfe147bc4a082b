"""Merge gates: the registry of every gate kind, the verdict, and the gates table.

``GateSettings`` is the registry: one field per kind, in the order the report lists
them (split integrity first), each a ``GateKind`` that declares its settings, the
measurement it needs and its rule (review/gates/base.py). params.yaml ``gates`` is
validated against it; ``judge`` runs every kind; the README's gates table is derived
from it (``rules_table``).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from pydantic import BaseModel, ConfigDict

from modelops.review.gates.base import Gate, GateKind, Measured
from modelops.review.gates.model import Baselines, Calibration, Champion, Floors, Slices
from modelops.review.gates.pipeline import Behaviour, Integrity, Pipeline
from modelops.review.gates.serving import Budgets, Parity

__all__ = ["Gate", "GateSettings", "Measured", "judge", "rules_table", "verdict"]


class GateSettings(BaseModel):
    """Merge gates for pull requests (params.yaml ``gates``; ``modelops gates``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: Pipeline = Pipeline()
    integrity: Integrity = Integrity()
    behaviour: Behaviour = Behaviour()
    floors: Floors = Floors()
    champion: Champion = Champion()
    calibration: Calibration = Calibration()
    baselines: Baselines = Baselines()
    slices: Slices = Slices()
    parity: Parity = Parity()
    budgets: Budgets = Budgets()

    def kinds(self) -> dict[str, GateKind]:
        """Every gate kind by its section name, in report order."""
        return {name: getattr(self, name) for name in type(self).model_fields}


def judge(settings: GateSettings, measured: Measured) -> list[Gate]:
    """Every gate. Without fresh outputs (the pipeline failed) only the pipeline gates
    run, and the model's are one skipped gate with the reason; without a comparison
    (no rows left to compare on) the kinds that need one are that skipped gate."""
    gates = [replace(g, kind="pipeline") for g in settings.pipeline.judge(measured)]
    if not measured.fresh:
        if measured.pipeline is not None:
            stage = measured.pipeline.get("failed_stage") or "?"
            reason = f"no fresh model to judge: the pipeline failed at '{stage}'"
            gates.append(Gate("model", "skipped", reason=reason, kind="pipeline"))
        return gates
    for section, kind in settings.kinds().items():
        if section == "pipeline" or (kind.needs == "comparison" and measured.comparison is None):
            continue
        gates += [replace(g, kind=section) for g in kind.judge(measured)]
    if measured.comparison is None:
        reason = f"not compared: {measured.not_compared}"
        gates.append(Gate("model", "skipped", reason=reason, kind="pipeline"))
    return gates


def verdict(gates: list[Gate], warnings: list[str] | None = None) -> dict[str, Any]:
    """The machine-readable verdict: PASS unless any gate failed."""
    failed = [g.name for g in gates if g.status == "fail"]
    return {
        "verdict": "FAIL" if failed else "PASS",
        "failed": failed,
        "skipped": [g.name for g in gates if g.status == "skipped"],
        "warnings": warnings or [],
        "gates": [asdict(g) for g in gates],
    }


def rules_table(settings: GateSettings) -> list[str]:
    """The gates table (markdown) for these settings: the README shows the shipped one."""
    rows = []
    for section, kind in settings.kinds().items():
        where = f"`gates.{section}`" if type(kind).model_fields else ""
        for r in kind.rules():
            knob = f"{where}: {r.default}" if where and r.default else where or "–"
            rows.append(f"| `{r.gate.replace(', ', '`, `')}` | {r.fails_when} | {knob} |")
    return ["| gate | fails when | settings: default |", "|---|---|---|", *rows]
