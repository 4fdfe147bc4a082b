"""The shape every gate has: its settings, the measurement it needs, and its rule.

A gate kind is a pydantic model: its fields are its settings (``gates.<section>`` in
params.yaml, validated when params.yaml is read), ``needs`` names the measurement it
judges (a field of ``Measured``: the kinds that need the comparison are not judged
without one), ``judge`` applies its rule, and ``rules`` describes the rule for the
README's gates table. A measurement that was not taken makes the kind's gates
``skipped`` with the reason, never passed; one that the pull-request job must take
(the train record, serving parity, the behavioural tests) fails when it is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # compare imports config, which imports the gates' settings
    from modelops.review.compare import Comparison

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
    kind: str = ""  # the section of params.yaml `gates` that declares it


@dataclass(frozen=True)
class Rule:
    """One line of the gates table: a gate (or family), when it fails, its default."""

    gate: str
    fails_when: str
    default: str = ""


@dataclass(frozen=True)
class Measured:
    """Everything the gates judge; None where a measurement was not taken."""

    pipeline: dict[str, Any] | None = None  # `modelops repro`'s record
    fresh: bool = False  # the pipeline's outputs are this change's, so the model is judged
    comparison: Comparison | None = None  # challenger vs. champion on the same rows
    not_compared: str = ""  # why there is no comparison although the outputs are fresh
    behaviour: Path | None = None  # JUnit XML of `make behaviour`
    baselines: dict[str, Any] | None = None  # metrics/baselines.json: lift over each baseline
    integrity: dict[str, Any] | None = None  # what the challenger was trained and tested on
    parity: dict[str, Any] | None = None  # the served model against the offline scores
    fixed_thresholds: dict[str, dict[str, float]] = field(default_factory=dict)  # file -> action


class GateKind(BaseModel):
    """Base of every gate kind (a section of params.yaml ``gates``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    needs: ClassVar[str]  # the field of Measured the rule reads

    def judge(self, measured: Measured) -> list[Gate]:
        """This kind's gates."""
        raise NotImplementedError

    def rules(self) -> list[Rule]:
        """What the README's gates table says of this kind, with its settings."""
        raise NotImplementedError


def listed(values: dict[str, float], text: Any = str) -> str:
    """``roc_auc 0.005, brier 0.001`` for the gates table's default column."""
    return ", ".join(f"{name} {text(v)}" for name, v in values.items())


def missing(name: str, what: str, measured: Measured) -> Gate:
    """A measurement the pull-request job takes is absent: a failure when the job ran
    (its pipeline record says the pipeline passed), else skipped (gates run by hand)."""
    ran = (measured.pipeline or {}).get("status") == "passed"
    return Gate(name, "fail" if ran else "skipped", reason=what)
