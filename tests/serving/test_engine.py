"""Applying desired states: models that cannot be served are refused with a clear
error and the current state keeps serving; the replaced versions stay loaded. Scoring
failures: only the records that cause them fail."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path

import bentoml
import joblib
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.ensemble import HistGradientBoostingClassifier

from modelops.serving.engine import Engine
from modelops.serving.predlog import PREDICTIONS, PredictionLog
from modelops.serving.state import DesiredState
from modelops.serving.store import MODEL_FILE, ModelRefusedError, load_version
from tests.serving.support import record_ids, sample_requests


def copy_version(tag: str, suffix: str) -> tuple[str, Path]:
    """A copy of a stored version under a new tag, to damage."""
    source = bentoml.models.get(tag)
    new = f"{source.tag.name}:{suffix}"
    with bentoml.models.create(
        new, module="modelops.serving", metadata=dict(source.info.metadata)
    ) as model:
        shutil.copytree(
            source.path, model.path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("model.yaml")
        )
    return new, Path(bentoml.models.get(new).path)


@pytest.fixture
def engine(settings, versions, tmp_path):
    loads: list[str] = []

    def load(tag: str):
        loads.append(tag)
        return load_version(tag, settings.data_schema)

    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}", flush_interval_s=60)
    engine = Engine(
        settings.data_schema,
        log,
        load,
        reason_codes=3,
        batch_max_rows=512,
        id_field=settings.words.id_field,
    )
    engine.loads = loads
    engine.apply(DesiredState(champion=versions[0]))
    yield engine
    log.close()


def predict(engine, records):
    return asyncio.run(engine.predict(records, "test"))


def test_answers_name_the_id_after_the_words_and_the_log_calls_it_record_id(
    engine, settings, train_holdout
):
    records = sample_requests(settings, train_holdout[1], 3)
    answers = predict(engine, records)
    id_field = settings.words.id_field
    assert [a[id_field] for a in answers] == record_ids(settings, records, answers)
    assert engine.log.flush()
    with engine.log.engine.connect() as connection:
        logged = connection.execute(sa.select(PREDICTIONS.c.request_id, PREDICTIONS.c.record_id))
        assert {tuple(r) for r in logged} == {(a["request_id"], a[id_field]) for a in answers}


@pytest.mark.parametrize("damage", ["missing", "corrupt", "foreign_features"])
def test_a_model_that_cannot_be_served_is_refused_and_nothing_changes(
    engine, versions, settings, train_holdout, damage
):
    records = sample_requests(settings, train_holdout[1], 3)
    before = engine.served
    if damage == "missing":
        tag, message = f"{settings.model.name}:0000000000", "not in the BentoML model store"
    else:
        tag, folder = copy_version(versions[1], damage)
        if damage == "corrupt":
            (folder / MODEL_FILE).write_bytes(b"not a pickle")
            message = "corrupt or incomplete"
        else:
            frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0], "shoe_size": [40, 41, 42, 43]})
            joblib.dump(
                HistGradientBoostingClassifier(max_iter=2).fit(frame, [0, 1, 0, 1]),
                folder / MODEL_FILE,
            )
            message = "does not fit the serving schema"
    with pytest.raises(ModelRefusedError, match=message):
        engine.apply(
            DesiredState(champion=versions[0], challenger=tag, strategy={"type": "shadow"})
        )
    assert engine.served is before
    assert engine.ready()
    assert {a["model_version"] for a in predict(engine, records)} == {versions[0]}


def test_blue_green_switch_and_switch_back_load_nothing_again(
    engine, versions, settings, train_holdout
):
    records = sample_requests(settings, train_holdout[1], 5)
    a, b = versions
    engine.apply(DesiredState(champion=a, challenger=b, strategy={"type": "blue_green"}))
    engine.apply(DesiredState(champion=b, challenger=a, strategy={"type": "blue_green"}))
    assert {x["model_version"] for x in predict(engine, records)} == {b}
    engine.apply(DesiredState(champion=a))
    engine.apply(DesiredState(champion=b))
    assert engine.loads == [a, b], "each version was loaded once; switches reuse loaded models"
    assert engine.previous is not None
    assert engine.previous.state.champion == a


class CountingScorer:
    """Wraps a scorer: counts model calls; fails like tests.serving.support.Fragile."""

    def __init__(self, scorer, column, fail, nan, broken=False):
        self.scorer, self.column, self.fail, self.nan = scorer, column, fail, nan
        self.reference, self.broken, self.calls = scorer.reference, broken, 0

    def score_and_explain(self, records, top):
        self.calls += 1
        if any(r[self.column] == self.fail for r in records):
            raise ValueError("poisoned")
        scores, reasons = self.scorer.score_and_explain(records, top)
        scores[[r[self.column] == self.nan for r in records]] = float("nan")
        return scores, reasons

    def score(self, records):
        if self.broken:
            raise ValueError("broken for every record")
        return self.scorer.score(records)


@pytest.mark.parametrize("broken", [False, True])
def test_a_failing_model_call_is_split_until_only_the_culprits_fail(
    engine, settings, train_holdout, broken
):
    from modelops.serving.engine import Job, ScoringError, compute
    from tests.serving.support import poison_values

    column, fail, nan = poison_values(settings, train_holdout[1])
    version = engine.served.models[engine.served.state.champion]
    scorer = CountingScorer(version.scorer, column, fail, nan, broken)
    model = dataclasses.replace(version, scorer=scorer)
    records = sample_requests(settings, train_holdout[1], 64)
    records[10] = records[10] | {column: fail}
    records[50] = records[50] | {column: nan}
    outcomes = compute([Job(model, r, 3) for r in records])
    errors = {i: o for i, o in enumerate(outcomes) if isinstance(o, ScoringError)}
    assert set(errors) == {10, 50}
    assert "failed to score" in str(errors[10])
    assert "non-finite score (nan)" in str(errors[50])
    assert {e.by_input for e in errors.values()} == {not broken}
    expected = version.scorer.score_and_explain(records[:10] + records[11:], 3)[0]
    scores = [o[0] for i, o in enumerate(outcomes) if i not in errors]
    assert scores == [s for i, s in enumerate(expected) if i != 49]
    assert scorer.calls <= 2 * 7, "bisection: a few calls per culprit, not one per record"


def test_a_shadow_failure_is_counted_and_the_answer_stands(
    engine, versions, settings, train_holdout
):
    from tests.serving.support import poison_values

    column, fail, nan = poison_values(settings, train_holdout[1])
    engine.apply(
        DesiredState(champion=versions[0], challenger=versions[1], strategy={"type": "shadow"})
    )
    served = engine.served
    shadow = served.models[versions[1]]
    failing = dataclasses.replace(shadow, scorer=CountingScorer(shadow.scorer, column, fail, nan))
    engine.served = dataclasses.replace(served, models=served.models | {versions[1]: failing})
    record = sample_requests(settings, train_holdout[1], 1)[0] | {column: nan}
    [answer] = predict(engine, [record])
    assert answer["route"] == "champion"
    assert 0 <= answer["score"] <= 1
    assert engine.log.flush()
    with engine.log.engine.connect() as connection:
        routes = connection.execute(
            sa.select(PREDICTIONS.c.route).where(PREDICTIONS.c.request_id == answer["request_id"])
        ).all()
    assert [r.route for r in routes] == ["champion"], "no shadow row without a shadow score"
