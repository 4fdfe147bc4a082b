"""The service over HTTP (a real `bentoml serve` on 127.0.0.1): every endpoint, the
error answers, metrics, desired-state changes and their guard."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import sqlalchemy as sa

from modelops.serving.predlog import PREDICTIONS
from tests.serving.support import (
    assert_spec_follows,
    record_ids,
    running_server,
    sample_requests,
    write_state,
)

pytestmark = pytest.mark.integration
TOKEN = "test-admin-token"


@pytest.fixture(scope="module")
def server(versions, tmp_path_factory):
    state = {"champion": versions[0], "strategy": {"type": "single"}, "automation": "partial"}
    with running_server(
        tmp_path_factory.mktemp("api"),
        state,
        env={"MODELOPS_ADMIN_TOKEN": TOKEN},
        serving={"max_batch_size": 8, "max_body_bytes": 20_000},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def records(settings, train_holdout):
    return sample_requests(settings, train_holdout[1], 20)


@pytest.fixture(scope="module")
def one(names):
    """The /predict body for one record."""
    return lambda record: {names.record: record}


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def apply(client, server, **state) -> httpx.Response:
    write_state(server.state_file, **state)
    return client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, json={})


@pytest.fixture
def single(client, server, versions):
    yield
    assert apply(client, server, champion=versions[0]).status_code == 200


def log_rows(server, request_ids, expected, timeout_s=5.0):
    engine = sa.create_engine(server.log_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            rows = []
            with engine.connect() as connection:
                if sa.inspect(connection).has_table("predictions"):
                    rows = connection.execute(
                        sa.select(PREDICTIONS).where(PREDICTIONS.c.request_id.in_(request_ids))
                    ).all()
            if len(rows) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)
    finally:
        engine.dispose()


def test_predict_answers_with_score_decision_version_route_and_reasons(
    client, records, names, one, settings, versions, server
):
    answer = client.post("/predict", json=one(records[0])).raise_for_status().json()
    assert set(answer) == {
        "request_id",
        names.id_field,
        "score",
        "decision",
        "automation",
        "model_version",
        "route",
        "reasons",
    }
    assert [answer[names.id_field]] == record_ids(settings, records[:1], [answer])
    assert 0 <= answer["score"] <= 1
    assert answer["decision"] in ("approve", "review", "decline")
    assert (answer["model_version"], answer["route"]) == (versions[0], "champion")
    assert len(answer["reasons"]) <= 3
    for reason in answer["reasons"]:
        assert reason["value"] == records[0][reason["feature"]]
        assert reason["contribution"] > 0
    [record] = log_rows(server, [answer["request_id"]], 1)
    assert record.score == answer["score"]
    assert record.record_id == answer[names.id_field]
    time = settings.data_schema.time_column  # a time comes back in the database's format
    assert record.inputs | {time: None} == records[0] | {time: None}
    assert record.decision == answer["decision"]
    assert record.latency_ms > 0


def test_predict_batch_keeps_order_and_is_bounded(client, records, names, one, settings):
    batch = {names.records: records[:5]}
    answers = client.post("/predict_batch", json=batch).raise_for_status().json()
    assert [a[names.id_field] for a in answers] == record_ids(settings, records[:5], answers)
    single = [client.post("/predict", json=one(r)).json()["score"] for r in records[:5]]
    assert [a["score"] for a in answers] == single
    empty = client.post("/predict_batch", json={names.records: []})
    assert empty.status_code == 400
    assert "at least 1" in empty.text
    assert names.records in empty.text
    over = client.post("/predict_batch", json={names.records: records[:9]})
    assert over.status_code == 400
    assert "at most 8" in over.text


def test_feedback_by_either_id_with_clear_404_and_409(client, records, names, one):
    answer = client.post("/predict", json=one(records[1])).json()
    record_id = answer[names.id_field]
    ok = client.post("/feedback", json={"request_id": answer["request_id"], "label": 1})
    assert ok.status_code == 200
    assert set(ok.json()) == {"request_id", names.id_field, "label", "received_at"}
    assert ok.json()[names.id_field] == record_id
    again = client.post("/feedback", json={names.id_field: record_id, "label": 0})
    assert again.status_code == 409
    assert "already has a label" in again.text
    unknown = client.post("/feedback", json={names.id_field: "no-such-id", "label": 1})
    assert unknown.status_code == 404
    assert f"{names.id_field} 'no-such-id'" in unknown.text
    both = client.post("/feedback", json={"request_id": "a", names.id_field: "b", "label": 1})
    assert both.status_code == 400
    assert "exactly one" in both.text
    assert names.id_field in both.text
    bad = client.post("/feedback", json={"request_id": "a", "label": 2})
    assert bad.status_code == 400
    assert "label" in bad.text


def test_metadata_livez_readyz_and_metrics(client, one, versions):
    client.post("/predict", json=one({"bad": 1}))
    meta = client.post("/metadata", json={}).raise_for_status().json()
    assert meta["desired_state"]["champion"] == versions[0]
    [model] = meta["models"]
    assert model["tag"] == versions[0]
    assert model["fast_path"] is True
    assert set(model["thresholds"]) == {"review", "decline"}
    assert "train" in model["data_md5"]
    assert meta["prediction_log"]["backend"] == "sqlite"
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    metrics = client.get("/metrics").text
    for name in (
        "modelops_predictions_total{decision=",
        f'version="{versions[0]}"',
        'route="champion"',
        "modelops_request_latency_seconds_bucket",
        'modelops_http_requests_total{endpoint="/predict",status="400"}',
        "modelops_score_bucket",
        "modelops_prediction_log_written_total",
    ):
        assert name in metrics, name


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_bodies_get_413_before_parsing(client, records, names, chunked):
    body = json.dumps({names.records: records * 10}).encode()
    assert len(body) > 20_000
    content = iter([body[i : i + 4096] for i in range(0, len(body), 4096)]) if chunked else body
    answer = client.post(
        "/predict_batch", content=content, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert "max_body_bytes" in answer.text


def test_invalid_json_is_a_400_saying_so(client, names):
    answer = client.post(
        "/predict",
        content=f'{{"{names.record}": '.encode(),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400
    assert "invalid JSON" in answer.json()["detail"]


def test_reload_needs_the_admin_token(client, server):
    assert client.post("/admin/reload", json={}).status_code == 401
    wrong = client.post("/admin/reload", json={}, headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401


def test_shadow_logs_the_challenger_and_returns_the_champion(
    client, server, records, one, versions, single
):
    assert (
        apply(
            client,
            server,
            champion=versions[0],
            challenger=versions[1],
            strategy={"type": "shadow"},
        ).status_code
        == 200
    )
    answer = client.post("/predict", json=one(records[2])).json()
    assert (answer["route"], answer["model_version"]) == ("champion", versions[0])
    rows = log_rows(server, [answer["request_id"]], 2)
    assert sorted((r.route, r.model_version, r.decision) for r in rows) == [
        ("champion", versions[0], answer["decision"]),
        ("shadow", versions[1], "none"),
    ]


def test_shadow_automation_returns_nothing_to_act_on(
    client, server, records, one, versions, single
):
    assert apply(client, server, champion=versions[0], automation="shadow").status_code == 200
    answer = client.post("/predict", json=one(records[3])).json()
    assert answer["score"] is None
    assert answer["decision"] == "none"
    assert answer["reasons"] == []
    [record] = log_rows(server, [answer["request_id"]], 1)
    assert 0 <= record.score <= 1, "the log keeps the score"


def test_a_refused_state_names_the_problem_and_changes_nothing(
    client, server, records, one, settings, versions, single
):
    refused = apply(client, server, champion=f"{settings.model.name}:doesnotexist")
    assert refused.status_code == 400
    assert "champion" in refused.text
    assert "doesnotexist" in refused.text
    answer = client.post("/predict", json=one(records[4])).json()
    assert answer["model_version"] == versions[0]
    assert "doesnotexist" in client.post("/metadata", json={}).json()["last_refused"]
    assert client.get("/readyz").status_code == 200


def test_the_openapi_spec_is_the_schema_in_the_configured_words(client, settings):
    spec = client.get("/docs.json").raise_for_status().json()
    assert_spec_follows(spec, settings)
