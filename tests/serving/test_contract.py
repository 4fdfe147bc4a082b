"""The API's names follow params.yaml words: envelopes, the id field, model titles, the
service's name and description, and the OpenAPI spec of the service as imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import bentoml
import pytest
import yaml
from pydantic import ValidationError

from modelops.config import ConfigError, WordSettings
from modelops.schema import ColumnType
from modelops.serving.bento import bento_name, description
from modelops.serving.contract import ApiNames, api_models, requests_from_frame
from tests.conftest import PARAMS, with_updates
from tests.serving.support import REPO, assert_spec_follows, sample_requests, write_state

OTHER_WORDS = {"record": "customer", "positive": "churn", "negative": "retained"}
EXAMPLE_WORDS = ("transaction", "fraud", "card")


@pytest.fixture(scope="module")
def other(settings):
    """The settings with another domain's words and model name."""
    return with_updates(settings, words=OTHER_WORDS, model={"name": "churn"})


@pytest.fixture(scope="module")
def record(settings, train_holdout):
    return sample_requests(settings, train_holdout[1], 1)[0]


def test_the_names_follow_the_words(settings):
    names = ApiNames.from_words(settings.words)
    record = settings.words.record.replace(" ", "_")
    assert (names.record, names.id_field) == (record, f"{record}_id")
    assert names.records == settings.words.plural.replace(" ", "_")
    customer = ApiNames.from_words(WordSettings(**OTHER_WORDS))
    assert (customer.record, customer.records, customer.id_field, customer.title) == (
        "customer",
        "customers",
        "customer_id",
        "Customer",
    )
    spaced = ApiNames.from_words(WordSettings(record="credit application"))
    assert (spaced.record, spaced.records, spaced.id_field, spaced.title) == (
        "credit_application",
        "credit_applications",
        "credit_application_id",
        "CreditApplication",
    )
    assert ApiNames.from_words(WordSettings(record="person", records="people")).records == "people"
    neutral = ApiNames.from_words(WordSettings())
    assert (neutral.record, neutral.records, neutral.id_field) == ("record", "records", "record_id")


def test_records_from_a_frame_keep_every_digit_of_a_float(settings, train_holdout):
    schema = settings.data_schema
    floats = [c for c in schema.columns if schema.columns[c].type == ColumnType.FLOAT]
    if not floats:
        pytest.skip("the schema has no float column")
    holdout = train_holdout[1]
    rows = holdout[holdout[floats[0]].notna()].head(3).copy()
    rows[floats[0]] = rows[floats[0]] + 1 / 3  # more digits than pandas writes to JSON
    records = json.loads(json.dumps(requests_from_frame(rows, schema)))
    assert [r[floats[0]] for r in records] == rows[floats[0]].tolist()
    ints = [c for c in schema.features if schema.columns[c].type == ColumnType.INT]
    assert all(type(r[c]) is int for r in records for c in ints if r[c] is not None)


@pytest.mark.parametrize(
    ("record", "problem"), [("request", "'request_id'"), ("prediction", "'Prediction'")]
)
def test_a_word_that_clashes_with_the_api_is_refused(record, problem):
    with pytest.raises(ConfigError, match=problem):
        ApiNames.from_words(WordSettings(record=record))


def test_the_request_and_response_models_use_other_words(other, record):
    api = api_models(other.data_schema, other.words, max_batch_size=4)
    assert api.record.__name__ == "Customer"
    body = api.predict.model_validate_json(json.dumps({"customer": record}))
    column = other.data_schema.id_column or other.data_schema.features[0]
    assert body.record.model_dump()[column] == record[column]
    with pytest.raises(ValidationError, match="customer"):
        api.predict.model_validate_json(json.dumps({"transaction": record}))
    batch = api.predict_batch.model_validate_json(json.dumps({"customers": [record] * 4}))
    assert len(batch.records) == 4
    with pytest.raises(ValidationError, match="customers"):
        api.predict_batch.model_validate_json(json.dumps({"customers": [record] * 5}))
    feedback = api.feedback.model_validate_json('{"customer_id": "c1", "label": 1}')
    assert (feedback.record_id, feedback.request_id) == ("c1", None)
    prediction = api.prediction.model_json_schema()
    assert "customer_id" in prediction["required"]
    assert "churn" in prediction["properties"]["score"]["description"]
    assert "customer_id" in api.feedback_result.model_json_schema()["required"]
    assert set(api.predict.model_json_schema()["$defs"]) == {"Customer"}
    assert set(api.predict_batch.model_json_schema()["properties"]) == {"customers"}


def test_the_service_names_and_description_follow_model_name_and_words(other):
    assert bento_name(other.model) == "churn-service"
    text = description(other.words)
    assert "customer" in text
    assert "churn" in text
    assert not any(word in text.lower() for word in EXAMPLE_WORDS)


def run_with_other_words(versions, folder: Path, code: str) -> str:
    """Run Python ``code`` in the repository with params.yaml in the other words, serving
    versions[0]; return the last line it printed."""
    params = yaml.safe_load(PARAMS.read_text())
    params["words"] = OTHER_WORDS
    params["model"]["name"] = "churn"
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    state = write_state(folder / "state.yaml", champion=versions[0])
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=os.environ
        | {
            "MODELOPS_PARAMS": str(folder / "params.yaml"),
            "MODELOPS_DESIRED_STATE": str(state),
            "MODELOPS_LOG_URL": f"sqlite:///{folder / 'predictions.db'}",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_the_service_imported_with_other_words_has_a_spec_in_those_words(other, versions, tmp_path):
    """The service as BentoML builds it (no server): envelopes, id fields, title and
    description in the other words; no model named after the example's."""
    code = (
        "import json; from modelops.serving.service import ModelService; "
        "print(json.dumps(ModelService.openapi_spec.asdict()))"
    )
    spec = json.loads(run_with_other_words(versions, tmp_path, code))
    assert_spec_follows(spec, other)
    assert spec["info"]["title"] == "churn-service"
    assert "Transaction" not in spec["components"]["schemas"]
    assert not any(word in spec["info"]["description"].lower() for word in EXAMPLE_WORDS)


def test_the_service_packs_the_versions_an_image_carries(other, versions, tmp_path, monkeypatch):
    """`make image` sets MODELOPS_BUNDLE: the service declares those models too (once
    each), so `bentoml build` packs them beside the desired state's."""
    code = (
        "from modelops.serving.service import ModelService; "
        "print(' '.join(sorted(str(m.tag) for m in ModelService.models)))"
    )
    assert run_with_other_words(versions, tmp_path, code) == versions[0]
    monkeypatch.setenv("MODELOPS_BUNDLE", " ".join(versions))
    assert run_with_other_words(versions, tmp_path, code) == " ".join(sorted(versions))


@pytest.mark.integration  # builds a real Bento
def test_the_bento_is_named_and_described_from_the_settings(other, versions, tmp_path):
    """`make bento` with other words and model name: the Bento `<model.name>-service`,
    labelled with the project, described and specified in those words."""
    code = (
        "import os; from modelops.config import load_settings; "
        "from modelops.serving import bento; "
        f"bento.save_current = lambda settings: {versions[0]!r}; "
        "print(bento.build(load_settings(os.environ['MODELOPS_PARAMS'])))"
    )
    tag = run_with_other_words(versions, tmp_path, code)
    assert tag == f"churn-service:{versions[0].split(':')[1]}"
    built = bentoml.get(tag)
    assert built.info.labels["project"] == "churn"
    assert built.doc == description(other.words)
    spec = yaml.safe_load((Path(built.path) / "apis" / "openapi.yaml").read_text())
    assert_spec_follows(json.loads(json.dumps(spec)), other)  # status codes as strings


def refusal(model, body: dict) -> list[tuple[tuple, str]]:
    """The (location, message) of each error validating ``body``; [] if it is valid."""
    try:
        model.model_validate_json(json.dumps(body))
    except ValidationError as exc:
        return [(e["loc"], e["msg"]) for e in exc.errors()]
    return []


def test_numbers_have_finite_bounds_and_strings_storable_characters(settings, record):
    api = api_models(settings.data_schema, settings.words, 256)
    schema, envelope = settings.data_schema, api.names.record
    assert refusal(api.predict, {envelope: record}) == []
    open_ints = [
        n
        for n in schema.features
        if schema.columns[n].type == ColumnType.INT
        and schema.columns[n].max is None
        and not schema.columns[n].allowed
    ]
    for name in open_ints:
        for value in (10**309, 2**64, 2**53):
            [(where, message)] = refusal(api.predict, {envelope: record | {name: value}})
            assert (where, "less than or equal to 9007199254740991" in message) == (
                (envelope, name),
                True,
            )
    texts = [
        n for n, c in schema.columns.items() if c.type == ColumnType.STRING and n != schema.target
    ]
    for name in texts:
        for value in ("a\x00b", "line\nbreak", "del\x7f", "c1\x9f", "x" * 129):
            [(where, _)] = refusal(api.predict, {envelope: record | {name: value}})
            assert where == (envelope, name)
        assert refusal(api.predict, {envelope: record | {name: "émoji 🙂 ok"}}) == []
    if schema.time_column:
        for value in (1714533120, "1714533120", "2025-05-01", "2025-02-30T00:00:00"):
            assert refusal(api.predict, {envelope: record | {schema.time_column: value}})
        for value in ("2025-05-01T03:12:00", "2025-05-01 03:12", "2025-05-01T03:12:00.5+02:00"):
            assert refusal(api.predict, {envelope: record | {schema.time_column: value}}) == []


def test_feedback_takes_a_strict_label_and_exactly_one_id(settings):
    api = api_models(settings.data_schema, settings.words, 256)
    id_field = api.names.id_field
    assert refusal(api.feedback, {"request_id": "r1", "label": 1}) == []
    assert refusal(api.feedback, {id_field: "t1", "label": 0}) == []
    for label in (True, 1.0, "1", 2, None):
        assert refusal(api.feedback, {"request_id": "r1", "label": label})
    for ids in ({}, {"request_id": "r1", id_field: "t1"}, {"request_id": None, id_field: "t1"}):
        assert refusal(api.feedback, ids | {"label": 1})
    rule = api.feedback.model_json_schema()["oneOf"]
    assert rule == [{"required": ["request_id"]}, {"required": [id_field]}]
