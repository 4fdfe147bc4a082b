"""The gate registry and each kind's rule, on synthetic scores with known differences."""

from dataclasses import fields

import numpy as np
import pytest
from pydantic import ValidationError

from modelops.review.gates import Gate, GateSettings, Measured, judge, rules_table, verdict
from modelops.review.gates.model import holm
from tests.conftest import REPO
from tests.review.conftest import comparison, scored


def run(gate_data, challenger, champion=None, **measured) -> list[Gate]:
    """Every gate on a synthetic comparison."""
    return judge(
        GATES,
        Measured(fresh=True, comparison=comparison(gate_data, challenger, champion), **measured),
    )


def statuses(gates: list[Gate], prefix: str = "") -> dict[str, str]:
    return {g.name: g.status for g in gates if g.name.startswith(prefix)}


GATES = GateSettings.model_validate(
    {
        "champion": {"roc_auc": 0.005, "average_precision": 0.01},
        "floors": {"roc_auc": 0.9, "brier": 0.02},
        "baselines": {"roc_auc": 0.01},
        "slices": {"metric": "roc_auc", "tolerance": 0.01, "min_positives": 100},
        "budgets": {"latency_ms_p50": 10.0},
    }
)


# ---------------------------------------------------------------- the registry


def test_every_kind_declares_a_measurement_and_a_rule():
    measurements = {f.name for f in fields(Measured)}
    for section, kind in GATES.kinds().items():
        assert kind.needs in measurements, section
        assert kind.rules(), section
    assert list(GATES.kinds())[:2] == ["pipeline", "integrity"]  # integrity is listed first


def test_unknown_metrics_and_settings_are_refused_by_name():
    with pytest.raises(ValidationError, match=r"unknown metric 'auc'; known: roc_auc"):
        GateSettings.model_validate({"champion": {"auc": 0.01}})
    with pytest.raises(ValidationError, match="not defined per slice"):
        GateSettings.model_validate({"slices": {"metric": "brier"}})
    with pytest.raises(ValidationError, match="p99"):
        GateSettings.model_validate({"budgets": {"p99": 10}})  # a field is never a silent gate
    with pytest.raises(ValidationError, match="must be >= 0"):
        GateSettings.model_validate({"champion": {"roc_auc": -0.01}})


def test_a_measurement_not_taken_skips_its_gates_or_fails_in_the_pr_job(gate_data):
    _, signal, _ = gate_data
    c = comparison(gate_data, scored(signal, 0.8, 1))
    by_hand = statuses(judge(GATES, Measured(fresh=True, comparison=c)))
    for name in ("parity:scores", "integrity:fitted_rows", "behaviour", "champion:roc_auc"):
        assert by_hand[name] == "skipped", name
    pr_job = statuses(judge(GATES, Measured(pipeline={"status": "passed"}, fresh=True,
                                            comparison=c)))  # fmt: skip
    for name in ("parity:scores", "parity:decisions", "behaviour"):
        assert pr_job[name] == "fail", name  # the job must have measured them
    assert pr_job["champion:roc_auc"] == "skipped"  # no champion is not the job's fault


@pytest.mark.example  # the README documents the shipped params.yaml, not an adopted one
def test_the_readme_gates_table_is_the_registrys():
    from modelops.config import load_settings

    readme = (REPO / "README.md").read_text()
    table = "\n".join(rules_table(load_settings(REPO / "params.yaml").gates))
    assert table in readme, "README's gates table is stale: paste rules_table() output"


# ---------------------------------------------------------------- champion and calibration


def test_equal_challenger_passes_and_a_worse_one_fails_naming_the_metric(gate_data):
    _, signal, _ = gate_data
    champion = scored(signal, 0.8, 1)
    equal = judge(
        GATES,
        Measured(fresh=True, comparison=comparison(gate_data, scored(signal, 0.8, 2), champion)),
    )
    assert set(statuses(equal, "champion:").values()) == {"pass"}
    worse = judge(
        GATES,
        Measured(fresh=True, comparison=comparison(gate_data, scored(signal, 2.5, 3), champion)),
    )
    assert statuses(worse, "champion:")["champion:roc_auc"] == "fail"
    auc = next(g for g in worse if g.name == "champion:roc_auc")
    assert auc.ci_high < -0.005
    assert auc.value < 0


def test_miscalibrated_scores_fail_the_calibration_gates_only(gate_data):
    _, signal, _ = gate_data
    champion = scored(signal, 0.8, 1)
    # the same ranking, scores shifted up: ROC-AUC unchanged, probabilities far too high
    shifted = scored(signal, 0.8, 1, shift=1.5)
    got = judge(GATES, Measured(fresh=True, comparison=comparison(gate_data, shifted, champion)))
    assert statuses(got, "calibration:") == {
        "calibration:log_loss": "fail",
        "calibration:brier": "fail",
    }
    assert statuses(got, "champion:")["champion:roc_auc"] == "pass"


def test_a_fixed_threshold_fails_when_the_flag_rate_moves_and_names_the_file(gate_data):
    _, signal, _ = gate_data
    champion = scored(signal, 0.8, 1)
    fixed = {"deploy/environments/production.yaml": {"review": champion.threshold}}
    same = judge(GATES, Measured(fresh=True, comparison=comparison(gate_data, champion, champion),
                                 fixed_thresholds=fixed))  # fmt: skip
    name = "fixed_threshold:deploy/environments/production.yaml:review"
    assert statuses(same)[name] == "pass"
    shifted = scored(signal, 0.8, 1, shift=1.5)
    moved = judge(GATES, Measured(fresh=True, comparison=comparison(gate_data, shifted, champion),
                                  fixed_thresholds=fixed))  # fmt: skip
    gate = next(g for g in moved if g.name == name)
    assert gate.status == "fail"
    assert "deploy/environments/production.yaml" in gate.reason
    assert gate.value > gate.threshold  # the flag-rate ratio beyond the allowed factor


# ---------------------------------------------------------------- slices


def test_holm_adjusts_step_down():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_slices_fail_only_where_a_regression_is_credible(gate_data):
    _, signal, region = gate_data
    champion = scored(signal, 0.8, 1)
    noise = np.where(region == "north", 3.0, 0.8)  # much worse in the north only
    got = statuses(run(gate_data, scored(signal, noise, 1), champion), "slice:")
    assert got == {
        "slice:region=islands:roc_auc": "skipped",  # too few positives: reported, not judged
        "slice:region=north:roc_auc": "fail",
        "slice:region=south:roc_auc": "pass",
    }


def test_small_slices_are_reported_with_their_interval(gate_data):
    _, signal, _ = gate_data
    c = comparison(gate_data, scored(signal, 0.8, 2), scored(signal, 0.8, 1))
    (islands,) = [
        g for g in judge(GATES, Measured(fresh=True, comparison=c)) if "islands" in g.name
    ]
    assert islands.ci_low is not None
    assert islands.ci_low < islands.value < islands.ci_high
    assert "too few to judge" in islands.reason


def test_no_slice_of_an_equally_good_model_fails(gate_data):
    _, signal, _ = gate_data
    for seed in range(2, 6):
        c = comparison(gate_data, scored(signal, 0.8, seed), scored(signal, 0.8, 1))
        assert (
            "fail"
            not in statuses(judge(GATES, Measured(fresh=True, comparison=c)), "slice:").values()
        )


# ---------------------------------------------------------------- the rest


def test_floors_baselines_and_budgets(gate_data):
    _, signal, _ = gate_data
    lift = {"logistic": {"lift": {"roc_auc": {"value": 0.02, "ci_low": 0.005, "ci_high": 0.03}}}}
    c = comparison(gate_data, scored(signal, 0.8, 1))
    got = statuses(judge(GATES, Measured(fresh=True, comparison=c, baselines=lift)))
    assert got["floor:roc_auc"] == "fail"  # below 0.9
    assert got["floor:brier"] == "pass"  # at most 0.02
    assert got["baseline:logistic:roc_auc"] == "fail"  # lower bound 0.005 < margin 0.01
    assert got["budget:latency_ms_p50"] == "fail"  # 12 ms > 10 ms
    assert got["budget:size_mb"] == "pass"


def test_a_floor_the_champion_misses_too_does_not_block_its_replacement(gate_data):
    _, signal, _ = gate_data
    alone = comparison(gate_data, scored(signal, 0.8, 1))
    both = comparison(gate_data, scored(signal, 0.8, 1), scored(signal, 0.7, 2))
    (kept,) = [
        g for g in judge(GATES, Measured(fresh=True, comparison=alone)) if g.name == "floor:roc_auc"
    ]
    (waived,) = [
        g for g in judge(GATES, Measured(fresh=True, comparison=both)) if g.name == "floor:roc_auc"
    ]
    assert kept.status == "fail"  # below 0.9, nothing to compare with
    assert waived.status == "pass"
    assert waived.value == kept.value  # the same challenger on the same rows
    assert "the champion misses it too" in waived.reason


def test_verdict_names_every_failing_gate_and_carries_warnings():
    gates = [Gate("a", "pass"), Gate("b", "fail"), Gate("c", "skipped", reason="why"),
             Gate("d", "fail")]  # fmt: skip
    got = verdict(gates, ["look"])
    assert (got["verdict"], got["failed"], got["skipped"]) == ("FAIL", ["b", "d"], ["c"])
    assert got["warnings"] == ["look"]
    assert verdict([Gate("a", "pass"), Gate("c", "skipped")])["verdict"] == "PASS"


def test_pipeline_gates_name_the_failing_stage():
    def run(outcome):
        return statuses(judge(GATES, Measured(pipeline=outcome)))

    assert run(None) == {"pipeline": "fail"}
    bad_data = {"status": "failed", "failed_stage": "validate", "errors": ["price: 3 rows"]}
    assert run(bad_data) == {"data_validation": "fail", "model": "skipped"}
    crash = {"status": "failed", "failed_stage": "train", "errors": [], "exit_code": 1}
    assert run(crash) == {"data_validation": "pass", "pipeline": "fail", "model": "skipped"}


def junit(tmp_path, cases: str):
    path = tmp_path / "behaviour.xml"
    path.write_text(f'<testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>')
    return path


def test_behaviour_gate_reads_junit_xml(tmp_path):
    def gate(path):
        (got,) = GATES.behaviour.judge(Measured(behaviour=path))
        return got

    assert gate(tmp_path / "missing.xml").status == "skipped"
    assert (
        gate(junit(tmp_path, '<testcase name="a"/><testcase name="b"><skipped/></testcase>')).status
        == "pass"
    )
    failing = "test_expected_direction[tenure-decreases]"
    bad = gate(
        junit(tmp_path, f'<testcase name="a"/><testcase name="{failing}"><failure/></testcase>')
    )
    assert bad.status == "fail"
    assert failing in bad.reason
    assert gate(junit(tmp_path, "")).status == "skipped"
