"""Promotion commits the next desired state on a branch, leaving the checkout alone and
refusing what the release rules refuse; rollback restores the previous state as a revert
commit."""

from __future__ import annotations

import pytest
import yaml

from modelops.release.promote import PromotionError, next_state, promote, rollback
from modelops.serving.state import DesiredStateError
from tests.release.support import git

HEADER = "# What staging serves (a comment the promotion keeps)\n"


@pytest.fixture
def project(released):
    """``released`` with staging and production serving v0.1.0."""
    environments = released / "deploy/environments"
    environments.mkdir(parents=True, exist_ok=True)
    for env in ("staging", "production"):
        (environments / f"{env}.yaml").write_text(
            HEADER + "champion: churn:v0.1.0\nautomation: partial\n"
        )
    git(released, "add", "-A")
    git(released, "commit", "-qm", "v0.1.0 everywhere")
    return released


def staging_on(repo, ref: str) -> dict:
    return yaml.safe_load(git(repo, "show", f"{ref}:deploy/environments/staging.yaml"))


def test_a_promotion_is_a_commit_on_its_own_branch_and_the_checkout_is_untouched(
    project, release_settings
):
    head = git(project, "rev-parse", "HEAD")
    change = promote(project, release_settings, "staging", "v0.2.0", "canary:10")
    assert change.branch == "promote/staging/v0.2.0-canary-10"
    assert git(project, "rev-parse", "HEAD") == head
    assert git(project, "status", "--porcelain") == ""
    assert staging_on(project, change.branch) == {
        "champion": "churn:v0.1.0",
        "challenger": "churn:v0.2.0",
        "strategy": {"type": "canary", "percent": 10.0},
        "automation": "partial",
    }
    assert git(project, "show", f"{change.branch}:deploy/environments/staging.yaml").startswith(
        HEADER
    )
    assert "+challenger: churn:v0.2.0" in change.diff
    assert "Promote churn v0.2.0 to staging (canary:10)" in git(
        project, "log", "-1", "--format=%s", change.branch
    )


def test_the_release_rules_refuse_a_promotion_before_anything_is_committed(
    project, release_settings
):
    with pytest.raises(DesiredStateError, match="has not served in staging yet"):
        promote(project, release_settings, "production", "v0.2.0", "shadow")
    with pytest.raises(DesiredStateError, match="not a registered version"):
        promote(project, release_settings, "staging", "v7.0.0", "shadow")
    with pytest.raises(PromotionError, match="strategy 'canary'"):
        promote(project, release_settings, "staging", "v0.2.0", "canary")
    assert git(project, "branch", "--list", "promote/*") == ""


def test_next_states_for_every_strategy():
    current = {
        "champion": "m:v1.0.0",
        "strategy": {"type": "single"},
        "thresholds": {"review": 0.3},
    }
    assert next_state(current, "m:v1.1.0", "shadow")["strategy"] == {"type": "shadow"}
    assert next_state(current, "m:v1.1.0", "ab:50")["strategy"] == {
        "type": "ab",
        "challenger_percent": 50.0,
    }
    assert next_state(current, "m:v1.1.0", "blue_green")["challenger"] == "m:v1.1.0"
    full = next_state(current, "m:v1.1.0", "full")
    assert full == {
        "champion": "m:v1.1.0",
        "strategy": {"type": "single"},
        "thresholds": {"review": 0.3},
    }
    with pytest.raises(PromotionError, match="champion already"):
        next_state(current, "m:v1.0.0", "shadow")


def test_rollback_restores_the_previous_state_as_a_revert_commit(project, release_settings):
    change = promote(project, release_settings, "staging", "v0.2.0", "shadow")
    git(project, "merge", "-q", "--ff-only", change.branch)
    before = staging_on(project, "HEAD")
    assert before["challenger"] == "churn:v0.2.0"
    rolled = rollback(project, release_settings, "staging")
    assert staging_on(project, "HEAD") == staging_on(project, f"{change.commit}^")
    assert "challenger" not in staging_on(project, "HEAD")
    message = git(project, "log", "-1", "--format=%B")
    assert f"This reverts commit {change.commit}" in message
    assert rolled.branch == "main"
    assert git(project, "status", "--porcelain") == ""


def test_rollback_refuses_without_an_earlier_state_or_with_local_edits(project, release_settings):
    environments = project / "deploy/environments"
    (environments / "qa.yaml").write_text("champion: churn:latest\n")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "qa")
    with pytest.raises(PromotionError, match="no earlier committed state"):
        rollback(project, release_settings, "qa")
    (environments / "staging.yaml").write_text("champion: churn:v0.2.0\n")
    with pytest.raises(PromotionError, match="uncommitted changes"):
        rollback(project, release_settings, "staging")
