"""Routing (shadow, canary, A/B, blue-green) and decisions per degree of automation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from modelops.serving.policy import Decision, Route, Thresholds, bucket, decide, in_effect, plan
from modelops.serving.state import Automation, DesiredState

ENTITIES = [f"C{i:07d}" for i in range(20_000)]


def state(strategy: dict, challenger: str | None = "m:b") -> DesiredState:
    return DesiredState.model_validate(
        {"champion": "m:a", "challenger": challenger, "strategy": strategy}
    )


def test_single_and_blue_green_send_everything_to_the_champion():
    for s in (state({"type": "single"}, None), state({"type": "blue_green"})):
        assert {plan(s, c) for c in ENTITIES[:500]} == {plan(s, "x")}
        assert plan(s, "x").route == Route.CHAMPION
        assert plan(s, "x").shadow is None


def test_shadow_answers_with_the_champion_and_scores_the_challenger_too():
    p = plan(state({"type": "shadow"}), "C1")
    assert (p.route, p.version, p.shadow) == (Route.CHAMPION, "m:a", "m:b")


@pytest.mark.parametrize(
    ("strategy", "share"),
    [
        ({"type": "canary", "percent": 10}, 0.10),
        ({"type": "ab", "challenger_percent": 50}, 0.50),
    ],
)
def test_canary_and_ab_send_the_configured_share_of_entities_and_are_sticky(strategy, share):
    s = state(strategy)
    routes = [plan(s, c).route for c in ENTITIES]
    observed = routes.count(Route.CHALLENGER) / len(ENTITIES)
    assert observed == pytest.approx(share, abs=0.015)
    assert routes == [plan(s, c).route for c in ENTITIES], (
        "the same entity always gets the same model"
    )


def test_a_bigger_canary_keeps_the_entities_already_on_the_challenger():
    small = {
        c
        for c in ENTITIES
        if plan(state({"type": "canary", "percent": 5}), c).route == Route.CHALLENGER
    }
    large = {
        c
        for c in ENTITIES
        if plan(state({"type": "canary", "percent": 25}), c).route == Route.CHALLENGER
    }
    assert small < large


def test_bucket_is_stable_and_in_range():
    assert bucket("C1", "canary") == bucket("C1", "canary") != bucket("C1", "ab")
    assert all(0 <= bucket(c, "canary") < 100 for c in ENTITIES[:1000])


T = Thresholds(review=0.1, decline=0.8)


@pytest.mark.parametrize(
    ("automation", "expected"),
    [
        (Automation.SHADOW, [Decision.NONE] * 4),
        (Automation.ASSIST, [Decision.REVIEW] * 4),
        (
            Automation.PARTIAL,
            [Decision.APPROVE, Decision.REVIEW, Decision.REVIEW, Decision.DECLINE],
        ),
        (Automation.FULL, [Decision.APPROVE, Decision.APPROVE, Decision.APPROVE, Decision.DECLINE]),
    ],
)
def test_decisions_per_degree_of_automation(automation, expected):
    assert [decide(s, automation, T) for s in (0.05, 0.1, 0.5, 0.8)] == expected


def test_the_desired_state_overrides_a_versions_thresholds_one_by_one():
    def overridden(**thresholds: float) -> Thresholds:
        return in_effect(T, DesiredState(champion="m:a", thresholds=thresholds))

    assert overridden() == T
    assert overridden(decline=0.9) == Thresholds(review=0.1, decline=0.9)
    assert overridden(review=0.2) == Thresholds(review=0.2, decline=0.8)


def test_a_strategy_the_router_does_not_know_fails_loudly():
    state = DesiredState(champion="m:1", challenger="m:2", strategy={"type": "shadow"})
    unknown = state.model_copy(update={"strategy": SimpleNamespace(type="mirror")})
    with pytest.raises(AssertionError):
        plan(unknown, "entity")
