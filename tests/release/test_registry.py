"""The registry in git (GTO): only a committed model whose gates passed is registered,
once; versions are ordered by number; `make versions` says where each one runs."""

from __future__ import annotations

import gto.api
import pytest

from modelops import paths
from modelops.release.registry import ReleaseError, bumped, find, register, versions
from modelops.release.show import versions_table
from tests.release.support import NAME, git, trained


def test_a_passing_committed_model_is_registered_with_what_it_is(repo):
    trained(repo, "a" * 32)
    version = register(repo, NAME)
    assert (version.version, version.tag, version.model_tag) == (
        "v0.1.0",
        "churn@v0.1.0",
        "churn:v0.1.0",
    )
    assert version.commit == git(repo, "rev-parse", "HEAD")
    record = version.record
    assert record["model_id"] == f"{NAME}-{'a' * 12}"
    assert (record["bento_model"], record["image_tag"]) == ("churn:v0.1.0", "0.1.0")
    assert record["commit"] == version.commit
    assert record["data_md5"]["train"] == "train-md5"
    assert record["metrics"] == {"roc_auc": 0.91}
    assert record["image_carries"] == ["v0.1.0"]  # no environment names a version yet
    assert "churn@v0.1.0" in git(repo, "tag", "-l")


def test_the_image_carries_the_versions_the_environments_name(released):
    # `released`: v0.1.0 in staging and production when v0.2.0 was registered
    assert find(released, NAME, "v0.2.0").record["image_carries"] == ["v0.1.0", "v0.2.0"]


@pytest.mark.parametrize(
    ("verdict", "judged", "dirty", "message"),
    [
        ("FAIL", None, False, "the gates failed"),
        ("PASS", "churn-000000000000", False, "not the pipeline's"),
        ("PASS", None, True, "uncommitted changes"),
    ],
)
def test_nothing_is_registered_without_passing_gates_for_this_committed_model(
    repo, verdict, judged, dirty, message
):
    trained(repo, "b" * 32, verdict, judged)
    if dirty:
        (repo / paths.LINEAGE).write_text("{}")
    with pytest.raises(ReleaseError, match=message):
        register(repo, NAME)
    assert versions(repo, NAME) == []


def test_no_verdict_is_refused_with_the_command_to_run(repo):
    trained(repo, "c" * 32)
    (repo / paths.VERDICT).unlink()
    with pytest.raises(ReleaseError, match="make pr"):
        register(repo, NAME)


def test_versions_follow_their_numbers_and_a_model_is_registered_once(repo):
    trained(repo, "a" * 32)
    register(repo, NAME)
    with pytest.raises(ReleaseError, match=r"registered already as churn@v0\.1\.0"):
        register(repo, NAME)
    trained(repo, "b" * 32)
    register(repo, NAME, "patch")
    trained(repo, "c" * 32)
    register(repo, NAME, "major")
    # registered within the same second: the order comes from the numbers, not the tags' time
    assert [v.version for v in versions(repo, NAME)] == ["v0.1.0", "v0.1.1", "v1.0.0"]
    assert bumped("v1.4.2", "minor") == "v1.5.0"
    with pytest.raises(ReleaseError, match="not a registered version"):
        find(repo, NAME, "v9.9.9")


def test_the_versions_table_says_where_each_version_runs_and_since_when(repo):
    trained(repo, "a" * 32)
    register(repo, NAME)
    trained(repo, "b" * 32)
    register(repo, NAME)
    environments = repo / "deploy/environments"
    environments.mkdir(parents=True)
    (environments / "production.yaml").write_text("champion: churn:v0.1.0\n")
    (environments / "staging.yaml").write_text(
        "champion: churn:v0.1.0\nchallenger: churn:v0.2.0\nstrategy: {type: shadow}\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "promote")
    gto.api.assign(str(repo), NAME, "staging", version="v0.2.0")
    table = versions_table(versions(repo, NAME), repo).splitlines()
    today = git(repo, "log", "-1", "--format=%cs")
    newest, oldest = table[1], table[2]
    assert newest.startswith("v0.2.0")
    assert f"staging challenger (shadow) since {today}" in newest
    assert "staging" in newest.split("staging challenger")[0], "the GTO stage is listed"
    assert f"production champion (single) since {today}" in oldest
    assert "0.91" in oldest
