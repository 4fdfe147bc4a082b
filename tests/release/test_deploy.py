"""The local reconciler's canary analysis and stage records (no server: /metrics samples
are given)."""

from __future__ import annotations

import pytest

from modelops.config import CanarySettings
from modelops.release import deploy
from modelops.release.deploy import Sample, bake, p99, record_stage
from modelops.release.registry import register, versions
from modelops.serving.state import DesiredState
from tests.conftest import with_updates
from tests.release.support import NAME, trained

BOUNDS = (0.01, 0.1, 0.5, float("inf"))


def sample(answered: float, failed: float, slow: float = 0.0, fast: float = 100.0) -> Sample:
    """Counters: ``fast`` requests under 10 ms, ``slow`` ones between 0.1 and 0.5 s."""
    cumulative = [fast, fast, fast + slow, fast + slow]
    return Sample(answered, failed, dict(zip(BOUNDS, cumulative, strict=True)))


@pytest.fixture
def samples(monkeypatch):
    """Feed ``bake`` the given samples, one per call of deploy.sample."""

    def feed(*given: Sample) -> None:
        queue = list(given)
        monkeypatch.setattr(
            deploy, "sample", lambda _url, _challenger: queue.pop(0) if len(queue) > 1 else queue[0]
        )

    return feed


CANARY = CanarySettings(
    bake_s=0.05, interval_s=0.001, min_requests=50, max_error_rate=0.01, max_p99_ms=250
)


def test_p99_reads_the_bucket_of_the_99th_percentile_of_the_requests_in_between():
    assert p99(sample(0, 0), sample(0, 0, slow=0, fast=200)) == 0.01
    assert p99(sample(0, 0), sample(0, 0, slow=5, fast=200)) == 0.5
    assert p99(sample(0, 0), sample(0, 0)) is None


def test_a_failing_canary_breaches_and_a_healthy_one_does_not(samples):
    samples(sample(0, 0), sample(30, 0), sample(100, 5))
    assert "failed 5 of 105 requests" in bake("url", "m:v2", CANARY)
    samples(sample(0, 0), sample(100, 0, fast=300))
    assert bake("url", "m:v2", CANARY) is None
    samples(sample(0, 0), sample(10, 5))  # too few requests to judge yet
    assert bake("url", "m:v2", CANARY) is None


def test_a_slow_canary_breaches_on_latency(samples):
    samples(sample(0, 0), sample(100, 0, slow=50, fast=200))
    assert "p99 latency 500 ms" in bake("url", "m:v2", CANARY)


def test_a_healthy_deployment_records_each_new_stage_once(repo, settings):
    trained(repo, "a" * 32)
    register(repo, NAME)
    named = with_updates(settings, model={"name": NAME})
    served = DesiredState(champion="churn:v0.1.0")
    assert record_stage(repo, named, "local", served) == ()
    assert record_stage(repo, named, "staging", served) == ("churn@v0.1.0 -> staging",)
    assert record_stage(repo, named, "staging", served) == ()
    assert versions(repo, NAME)[0].stages == ("staging",)
