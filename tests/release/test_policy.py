"""The release rules of desired-state files: stage environments name registered versions,
in stage order, with a newer challenger; the file and field are named; local is exempt."""

from __future__ import annotations

import pytest

from modelops.release.policy import check
from modelops.release.registry import register
from modelops.serving.state import DesiredStateError
from tests.release.support import NAME, git, trained


def state(repo, env: str, text: str):
    path = repo / "deploy/environments" / f"{env}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("env", "text", "problem"),
    [
        ("production", "champion: churn:latest\n", "champion: 'churn:latest' is not a registered"),
        ("staging", "champion: churn:v0.9.0\n", "churn@v0.9.0 is not a registered version"),
        ("staging", "champion: other:v0.1.0\n", "champion: 'other:v0.1.0' is not a registered"),
        (
            "production",
            "champion: churn:v0.1.0\nchallenger: churn:v0.2.0\n"
            "strategy: {type: canary, percent: 5}\n",
            "challenger: churn:v0.2.0 has not served in staging yet",
        ),
        (
            "staging",
            "champion: churn:v0.2.0\nchallenger: churn:v0.1.0\nstrategy: {type: shadow}\n",
            "challenger: churn:v0.1.0 is not newer than the champion churn:v0.2.0",
        ),
    ],
)
def test_a_state_that_breaks_a_release_rule_is_refused_naming_file_and_field(
    released, release_settings, env, text, problem
):
    path = state(released, env, text)
    with pytest.raises(DesiredStateError, match="refused") as refused:
        check(released, release_settings, path)
    assert str(path) in str(refused.value)
    assert problem in str(refused.value)


def test_states_that_keep_the_rules_pass_and_local_may_serve_latest(released, release_settings):
    shadow = "champion: churn:v0.1.0\nchallenger: churn:v0.2.0\nstrategy: {type: shadow}\n"
    assert check(released, release_settings, state(released, "staging", shadow)).versions == [
        "churn:v0.1.0",
        "churn:v0.2.0",
    ]
    production = state(released, "production", "champion: churn:v0.1.0\n")
    assert check(released, release_settings, production).champion == "churn:v0.1.0"
    local = state(released, "local", "champion: churn:latest\n")
    assert check(released, release_settings, local).champion == "churn:latest"


def test_a_pair_the_newer_versions_image_does_not_carry_is_refused(released, release_settings):
    # v0.3.0 is registered while the environments name v0.2.0 only: its image carries
    # v0.2.0 and itself, so a cluster cannot run it beside v0.1.0
    for stage in ("staging", "production"):
        state(released, stage, f"champion: {NAME}:v0.2.0\n")
    git(released, "add", "-A")
    git(released, "commit", "-qm", "v0.2.0 everywhere")
    trained(released, "c" * 32)
    assert register(released, NAME).record["image_carries"] == ["v0.2.0", "v0.3.0"]
    beside_v1 = "champion: churn:v0.1.0\nchallenger: churn:v0.3.0\nstrategy: {type: shadow}\n"
    with pytest.raises(DesiredStateError) as refused:
        check(released, release_settings, state(released, "staging", beside_v1))
    assert "champion: churn:v0.1.0 is not in the image of v0.3.0 (it carries v0.2.0, v0.3.0)" in (
        str(refused.value)
    )
    beside_v2 = "champion: churn:v0.2.0\nchallenger: churn:v0.3.0\nstrategy: {type: shadow}\n"
    assert check(released, release_settings, state(released, "staging", beside_v2)).challenger
