import numpy as np
import pytest

from modelops.review.gates import (
    Gate,
    behaviour_gate,
    budget_gates,
    floor_gates,
    pipeline_gates,
    relative_gates,
    slice_gates,
    verdict,
)
from modelops.training.metrics import Holdout, Scored, bootstrap


@pytest.fixture(scope="module")
def models():
    """A champion, an equally good retrain, a clearly worse and a better challenger."""
    rng = np.random.default_rng(11)
    n = 60_000
    y = (rng.random(n) < 0.02).astype(float)
    signal = rng.normal(0, 1, n) + 2.0 * y

    def scored(noise: float, seed: int) -> Scored:
        s = signal + np.random.default_rng(seed).normal(0, noise, n)
        p = 1 / (1 + np.exp(-(s - 4)))
        return Scored.at_review_rate(p, 0.02)

    holdout = Holdout(
        y=y, missed_cost=rng.uniform(5, 500, n), false_alarm_cost=np.zeros(n), action_cost=5.0
    )
    models = {
        "champion": scored(0.8, 1),
        "equal": scored(0.8, 2),
        "worse": scored(2.5, 3),
        "better": scored(0.1, 4),
    }
    return bootstrap(holdout, models, n_resamples=300, confidence=0.95, seed=0)


TOLERANCE = {"roc_auc": 0.005, "average_precision": 0.01}


def by_status(gates):
    return {g.name: g.status for g in gates}


def test_equal_challenger_passes_the_champion_gates(models):
    gates = relative_gates(models, "equal", "champion", TOLERANCE, kind="champion")
    assert set(by_status(gates).values()) == {"pass"}


def test_clear_regression_fails_and_names_the_metric(models):
    gates = relative_gates(models, "worse", "champion", TOLERANCE, kind="champion")
    assert by_status(gates)["champion:roc_auc"] == "fail"
    auc = next(g for g in gates if g.name.endswith("roc_auc"))
    assert auc.ci_high < -0.005
    assert auc.value < 0


def test_improvement_passes_with_a_positive_interval(models):
    (auc,) = relative_gates(models, "better", "champion", {"roc_auc": 0.005}, kind="champion")
    assert auc.status == "pass"
    assert auc.ci_low > 0


def test_lower_is_better_metrics_are_re_signed(models):
    (cost,) = relative_gates(models, "worse", "champion", {"log_loss": 0.0001}, kind="champion")
    assert cost.value < 0  # worse model: higher log loss, negative improvement
    assert cost.status == "fail"


def test_no_champion_is_skipped_with_a_reason(models):
    gates = relative_gates(models, "equal", None, TOLERANCE, kind="champion")
    assert {g.status for g in gates} == {"skipped"}
    assert all("no champion" in g.reason for g in gates)


def test_baseline_margin_uses_the_interval_lower_bound(models):
    (beats,) = relative_gates(models, "better", "worse", {"roc_auc": 0.01}, kind="baseline")
    (fails,) = relative_gates(models, "equal", "champion", {"roc_auc": 0.01}, kind="baseline")
    assert (beats.status, fails.status) == ("pass", "fail")


def test_floors():
    metrics = {"roc_auc": {"value": 0.85, "ci_low": 0.84, "ci_high": 0.86},
               "brier": {"value": 0.01, "ci_low": 0.009, "ci_high": 0.011}}  # fmt: skip
    got = by_status(floor_gates(metrics, {"roc_auc": 0.9, "brier": 0.02}))
    assert got == {"floor:roc_auc": "fail", "floor:brier": "pass"}


def test_slices_fail_only_beyond_tolerance_with_enough_positives():
    champion = {"region": {"north": {"positives": 500, "roc_auc": 0.90},
                           "south": {"positives": 500, "roc_auc": 0.90},
                           "islands": {"positives": 5, "roc_auc": 0.90}}}  # fmt: skip
    challenger = {"region": {"north": {"positives": 500, "roc_auc": 0.85},
                             "south": {"positives": 500, "roc_auc": 0.89},
                             "islands": {"positives": 5, "roc_auc": 0.50}}}  # fmt: skip
    got = by_status(slice_gates(challenger, champion, "roc_auc", 0.03, min_positives=100))
    assert got == {
        "slice:region=north:roc_auc": "fail",
        "slice:region=south:roc_auc": "pass",
        "slice:region=islands:roc_auc": "skipped",
    }
    assert slice_gates(challenger, None, "roc_auc", 0.03, 100)[0].status == "skipped"


def test_verdict_names_every_failing_gate():
    gates = [
        Gate("a", "pass"),
        Gate("b", "fail"),
        Gate("c", "skipped", reason="why"),
        Gate("d", "fail"),
    ]
    got = verdict(gates)
    assert got["verdict"] == "FAIL"
    assert got["failed"] == ["b", "d"]
    assert got["skipped"] == ["c"]
    assert verdict([Gate("a", "pass"), Gate("c", "skipped")])["verdict"] == "PASS"


def test_pipeline_gates_name_the_failing_stage():
    assert by_status(pipeline_gates(None)) == {"data_validation": "skipped"}
    assert by_status(pipeline_gates({"status": "passed"})) == {"data_validation": "pass"}
    bad_data = {"status": "failed", "failed_stage": "validate", "errors": ["price: 3 rows"]}
    (gate,) = pipeline_gates(bad_data)
    assert (gate.status, gate.reason) == ("fail", "price: 3 rows")
    crash = {"status": "failed", "failed_stage": "train", "errors": [], "exit_code": 1}
    assert by_status(pipeline_gates(crash)) == {"data_validation": "pass", "pipeline": "fail"}


def junit(tmp_path, cases: str):
    path = tmp_path / "behaviour.xml"
    path.write_text(f'<testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>')
    return path


def test_behaviour_gate_reads_junit_xml(tmp_path):
    assert behaviour_gate(tmp_path / "missing.xml").status == "skipped"
    ok = junit(tmp_path, '<testcase name="a"/><testcase name="b"><skipped/></testcase>')
    assert behaviour_gate(ok).status == "pass"
    failing = "test_expected_direction[tenure-decreases]"
    bad = junit(tmp_path, f'<testcase name="a"/><testcase name="{failing}"><failure/></testcase>')
    gate = behaviour_gate(bad)
    assert gate.status == "fail"
    assert failing in gate.reason
    assert behaviour_gate(junit(tmp_path, "")).status == "skipped"


def test_budget_gates():
    got = budget_gates(
        {"latency_ms_p50": 12.0, "size_mb": 3.0}, {"latency_ms_p50": 10.0, "size_mb": 20.0}
    )
    assert by_status(got) == {"budget:latency_ms_p50": "fail", "budget:size_mb": "pass"}
