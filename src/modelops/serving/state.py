"""The desired state of one environment: `deploy/environments/<env>.yaml`.

It names the champion (and optional challenger) model versions as BentoML model tags,
how traffic is routed between them, how much of the decision is automated, and
optional threshold overrides. The service applies a file only after it validated in
full, so a bad file changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modelops.errors import InputError


class DesiredStateError(InputError):
    """A desired-state file is unreadable, malformed or names a model that does not exist."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Single(_Strict):
    """All traffic to the champion."""

    type: Literal["single"] = "single"


class Shadow(_Strict):
    """The champion answers; the challenger also scores every request, logged only."""

    type: Literal["shadow"]


class Canary(_Strict):
    """`percent` of entities go to the challenger, sticky per entity."""

    type: Literal["canary"]
    percent: float = Field(gt=0, le=100)


class AB(_Strict):
    """A fixed split for an experiment: `challenger_percent` of entities, sticky."""

    type: Literal["ab"]
    challenger_percent: float = Field(gt=0, lt=100)


class BlueGreen(_Strict):
    """All traffic to the champion (live colour); the challenger (idle colour) stays
    loaded, so swapping the two names switches every request at once."""

    type: Literal["blue_green"]


Strategy = Annotated[Single | Shadow | Canary | AB | BlueGreen, Field(discriminator="type")]


class Automation(StrEnum):
    """How much of the decision the model makes (README: Serving)."""

    SHADOW = "shadow"  # scored and logged; nothing returned to act on
    ASSIST = "assist"  # every record to a human, with score and reasons
    PARTIAL = "partial"  # approve below review threshold, decline above decline, review between
    FULL = "full"  # decline at or above the decline threshold, approve the rest


class Thresholds(_Strict):
    """Overrides of the thresholds that travel with each model version."""

    review: float | None = Field(None, ge=0, le=1)
    decline: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.review is not None and self.decline is not None and self.review > self.decline:
            raise ValueError("review must not exceed decline")
        return self


class DesiredState(_Strict):
    """What one environment serves."""

    champion: str = Field(min_length=1, description="BentoML model tag, e.g. model:1a2b3c")
    challenger: str | None = None
    strategy: Strategy = Single()
    automation: Automation = Automation.PARTIAL
    thresholds: Thresholds = Thresholds()

    @model_validator(mode="after")
    def _challenger_fits_strategy(self) -> Self:
        if self.strategy.type == "single" and self.challenger:
            raise ValueError("challenger is set but strategy is single: pick a strategy")
        if self.strategy.type != "single" and not self.challenger:
            raise ValueError(f"strategy {self.strategy.type} needs a challenger")
        if self.challenger and self.challenger == self.champion:
            raise ValueError("challenger must differ from champion")
        return self

    @property
    def versions(self) -> list[str]:
        """Every model this state needs loaded."""
        return [v for v in (self.champion, self.challenger) if v]


def parse_state(text: str, source: str, resolve: Callable[[str], str]) -> DesiredState:
    """Validate YAML text; ``resolve`` maps a tag to its exact one (e.g. ``:latest``) or
    raises LookupError. Errors name the file and the field."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DesiredStateError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise DesiredStateError(f"{source}: expected a mapping with champion, strategy, ...")
    try:
        state = DesiredState.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"  {'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise DesiredStateError(
            f"{source}: invalid desired state:\n" + "\n".join(problems)
        ) from exc
    exact = {}
    for field in ("champion", "challenger"):
        tag = getattr(state, field)
        if tag is None:
            continue
        try:
            exact[field] = resolve(tag)
        except LookupError as exc:
            raise DesiredStateError(f"{source}: {field}: {exc}") from exc
    if exact.get("challenger") == exact["champion"]:
        raise DesiredStateError(f"{source}: challenger: is the same model as champion")
    return state.model_copy(update=exact)


def load_state(path: Path | str, resolve: Callable[[str], str]) -> DesiredState:
    """Read and validate a desired-state file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DesiredStateError(f"{path}: cannot read: {exc}") from exc
    return parse_state(text, str(path), resolve)
