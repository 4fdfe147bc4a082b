"""Gates on how the model was made: the pipeline ran, the split is sound, the model was
fitted on the rows it should have been, and the behavioural tests pass."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, ClassVar

from modelops.review.gates.base import Gate, GateKind, Measured, Rule, missing

NOT_MEASURED = "split integrity not measured (run `make gates` after the pipeline)"


class Pipeline(GateKind):
    """Data validation and the rest of the pipeline, from ``modelops repro``'s record."""

    needs: ClassVar[str] = "pipeline"

    def judge(self, measured: Measured) -> list[Gate]:
        outcome = measured.pipeline
        if outcome is None:
            if not measured.fresh:  # nothing ran and there are no outputs to judge
                return [Gate("pipeline", "fail", reason="no model to judge: the pipeline did "
                             "not run (see the job log; `make data` fails when the DVC remote "
                             "cannot be reached)")]  # fmt: skip
            reason = "pipeline outcome not recorded (run `make pr-repro`)"
            return [Gate("data_validation", "skipped", reason=reason)]
        stage, errors = outcome.get("failed_stage"), outcome.get("errors") or []
        message = errors[0] if errors else f"exit code {outcome.get('exit_code')}"
        valid = Gate("data_validation", "pass", reason="the data passed validation")
        if outcome["status"] == "passed":
            return [valid]
        if stage == "validate":
            return [Gate("data_validation", "fail", reason=message)]
        return [valid, Gate("pipeline", "fail", reason=f"stage '{stage or '?'}' failed: {message}")]

    def rules(self) -> list[Rule]:
        return [
            Rule("data_validation, pipeline", "a pipeline stage failed (a bad batch fails at "
                 "validate); the model gates are then skipped")
        ]  # fmt: skip


class Integrity(GateKind):
    """What the challenger was trained and tested on: holdout and train share no id, a
    time split keeps every train row before the holdout, train and holdout add up to the
    validated rows, and the estimator was fitted on exactly the train rows (or the share
    ``model.fit_rows`` declares), as the train stage recorded from what reached ``fit``."""

    needs: ClassVar[str] = "integrity"

    def judge(self, measured: Measured) -> list[Gate]:
        facts = measured.integrity
        names = ("no_shared_ids", "train_before_holdout", "rows_add_up", "fitted_rows")
        if facts is None:
            return [Gate(f"integrity:{n}", "skipped", reason=NOT_MEASURED) for n in names]
        return [
            _shared_ids(facts),
            _time_order(facts),
            _rows_add_up(facts),
            _fitted_rows(facts),
        ]

    def rules(self) -> list[Rule]:
        return [
            Rule("integrity:no_shared_ids", "a holdout id also occurs in train (needs an id "
                 "column)"),
            Rule("integrity:train_before_holdout", "with a time split, a train row is at or "
                 "after the holdout's first timestamp"),
            Rule("integrity:rows_add_up", "train + holdout rows differ from the validated rows"),
            Rule("integrity:fitted_rows", "the rows that reached the estimator's `fit` (recorded "
                 "by the train stage) differ from the train rows, or from the share "
                 "`model.fit_rows` declares"),
        ]  # fmt: skip


def _shared_ids(facts: dict[str, Any]) -> Gate:
    name, shared = "integrity:no_shared_ids", facts.get("shared_ids")
    if shared is None:
        return Gate(name, "skipped", reason="the schema has no id column")
    examples = ", ".join(map(str, facts.get("shared_id_examples") or []))
    reason = (
        f"{shared:,} holdout ids also occur in train (e.g. {examples}): the model is tested "
        "on rows it was trained on"
        if shared
        else f"no '{facts.get('id_column')}' occurs in both train and holdout"
    )
    return Gate(name, "fail" if shared else "pass", float(shared), 0.0, reason=reason)


def _time_order(facts: dict[str, Any]) -> Gate:
    name, overlap = "integrity:train_before_holdout", facts.get("time_overlap_rows")
    if overlap is None:
        return Gate(name, "skipped", reason="no time column: the split is a stratified share")
    train, holdout = facts["train"], facts["holdout"]
    span = f"train ends {train.get('time_max')}, holdout starts {holdout.get('time_min')}"
    reason = (
        f"{overlap:,} train rows are at or after the holdout's start ({span}): "
        "the model has seen the holdout's period"
        if overlap
        else span
    )
    return Gate(name, "fail" if overlap else "pass", float(overlap), 0.0, reason=reason)


def _rows_add_up(facts: dict[str, Any]) -> Gate:
    name, validated = "integrity:rows_add_up", facts.get("validated_rows")
    train, holdout = facts["train"]["rows"], facts["holdout"]["rows"]
    if validated is None or train is None or holdout is None:
        files = "metrics/data.json, data/train.parquet, data/holdout.parquet"
        return Gate(name, "fail", reason=f"rows not recorded: one of {files} is missing")
    ok = train + holdout == validated
    return Gate(name, "pass" if ok else "fail", float(train + holdout), float(validated),
                reason=f"train {train:,} + holdout {holdout:,} must equal the {validated:,} "
                "validated rows")  # fmt: skip


def _fitted_rows(facts: dict[str, Any]) -> Gate:
    name = "integrity:fitted_rows"
    fitted, expected = facts.get("fitted_rows"), facts.get("expected_fitted_rows")
    if fitted is None:
        return Gate(name, "fail", reason="the train stage did not record the rows that reached "
                    "the estimator's fit (metrics/train.json)")  # fmt: skip
    if expected is None:
        return Gate(name, "fail", reason="the rows model.fit_rows selects cannot be counted "
                    "on data/train.parquet")  # fmt: skip
    declared = facts.get("fit_rows") or {}
    chosen = [
        f"{key} {declared[key]!r}"
        for key, default in (("query", None), ("sample", 1.0))
        if declared.get(key, default) != default
    ]
    because = f"model.fit_rows: {', '.join(chosen)}" if chosen else "no filter or sample declared"
    reason = f"fitted on {fitted:,} rows, expected {expected:,} ({because})" + (
        "" if fitted == expected else ": rows were dropped or added before fit"
    )
    return Gate(name, "pass" if fitted == expected else "fail", float(fitted), float(expected),
                reason=reason)  # fmt: skip


class Behaviour(GateKind):
    """The behavioural model tests (``make behaviour``), from their JUnit XML."""

    needs: ClassVar[str] = "behaviour"

    def judge(self, measured: Measured) -> list[Gate]:
        path = measured.behaviour
        if path is None or not path.exists():
            return [missing("behaviour", "behavioural tests not run (`make behaviour`)",
                            measured)]  # fmt: skip
        failed, passed = [], 0
        for case in ET.parse(path).getroot().iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(case.get("name", "?"))
            elif case.find("skipped") is None:
                passed += 1
        if failed:
            return [Gate("behaviour", "fail", float(len(failed)), 0.0,
                         reason="failed: " + ", ".join(failed))]  # fmt: skip
        if passed == 0:
            return [Gate("behaviour", "skipped", reason="no behavioural test ran")]
        return [Gate("behaviour", "pass", 0.0, 0.0, reason=f"{passed} behavioural tests passed")]

    def rules(self) -> list[Rule]:
        return [
            Rule("behaviour", "a behavioural model test failed on the new model "
                 "(`tests/training/test_model_behaviour.py`: beats the prior, ignores ids, "
                 "entities and ignored columns, `behaviour.expect` directions)")
        ]  # fmt: skip
