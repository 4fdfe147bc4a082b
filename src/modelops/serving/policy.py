"""Routing (which model answers a request) and decisions (what its score means)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never

from modelops.serving.state import AB, Automation, BlueGreen, Canary, DesiredState, Shadow, Single


class Route(StrEnum):
    """Which model produced a prediction; shadow predictions are logged, never returned."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"
    SHADOW = "shadow"


class Decision(StrEnum):
    """What to do with the record. `none`: shadow automation, nothing to act on."""

    APPROVE = "approve"
    REVIEW = "review"
    DECLINE = "decline"
    NONE = "none"


@dataclass(frozen=True)
class Plan:
    """The route for one request: the model that answers and, optionally, a shadow."""

    route: Route
    version: str
    shadow: str | None = None


def bucket(entity: str, salt: str) -> float:
    """A stable position in [0, 100) for an entity: the same entity always lands in the same
    place, so canary and A/B assignment is sticky across requests and restarts."""
    digest = hashlib.sha256(f"{salt}:{entity}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def plan(state: DesiredState, entity: str) -> Plan:
    """Route one request per the desired state's strategy."""
    champion = Plan(Route.CHAMPION, state.champion)
    strategy, challenger = state.strategy, state.challenger
    if challenger is None:
        return champion
    match strategy:
        case Single() | BlueGreen():  # the champion takes everything
            return champion
        case Shadow():
            return Plan(Route.CHAMPION, state.champion, shadow=challenger)
        case Canary(percent=share) | AB(challenger_percent=share):
            if bucket(entity, strategy.type) < share:
                return Plan(Route.CHALLENGER, challenger)
            return champion
        case _:  # a new strategy must be routed here: mypy fails until it is
            assert_never(strategy)


@dataclass(frozen=True)
class Thresholds:
    """Scores at or above `review` go to a person; at or above `decline`, very likely positive."""

    review: float
    decline: float


def in_effect(own: Thresholds, state: DesiredState) -> Thresholds:
    """A version's own thresholds unless the desired state overrides them."""
    override = state.thresholds
    return Thresholds(
        own.review if override.review is None else override.review,
        own.decline if override.decline is None else override.decline,
    )


def decide(score: float, automation: Automation, thresholds: Thresholds) -> Decision:
    """The decision for one score under the environment's degree of automation."""
    if automation == Automation.SHADOW:
        return Decision.NONE
    if automation == Automation.ASSIST:
        return Decision.REVIEW
    if score >= thresholds.decline:
        return Decision.DECLINE
    if automation == Automation.PARTIAL and score >= thresholds.review:
        return Decision.REVIEW
    return Decision.APPROVE
