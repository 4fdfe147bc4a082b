"""The one error shape, the escaping of client text, and the edge in process (no server)."""

from __future__ import annotations

import asyncio
import json

import httpx
from prometheus_client import REGISTRY

from modelops.serving.edge import SERVER_ERROR, Edge, Endpoint
from modelops.serving.problem import MAX_DETAIL, escape, reshape


def test_client_text_is_escaped_and_cut():
    assert escape("ok") == "ok"
    assert escape("a\nb\x00c\\d") == "a\\nb\\x00c\\\\d"
    assert "\n" not in escape("x\n[INFO] forged")
    long = escape("z" * 10_000)
    assert long.startswith("z" * 80)
    assert long.endswith("(10000 characters)")
    assert len(long) < 120


def test_every_error_body_becomes_one_shape():
    validation = {
        "error": "1 validation error",
        "detail": [{"loc": ["transaction", "amount"], "msg": "Input should be > 0"}] * 30,
    }
    found = reshape(400, json.dumps(validation).encode())
    assert found.detail.startswith("transaction.amount: Input should be > 0;")
    assert "and 27 more (errors lists 20)" in found.detail
    assert len(found.errors) == 20
    assert reshape(404, b'[{"error": "no prediction"}]').detail == "no prediction"
    assert reshape(405, b"Method Not Allowed").title == "Method Not Allowed"
    hidden = reshape(500, b'{"error": "An unexpected error has occurred"}', "model m failed")
    assert (hidden.status, hidden.detail) == (500, "model m failed")
    huge = reshape(400, json.dumps({"error": "e" * 5000}).encode())
    assert len(huge.detail) <= MAX_DETAIL
    extra = {"detail": [{"loc": ["transaction", "k\n" * 100], "msg": "Extra inputs"}]}
    assert "\n" not in reshape(400, json.dumps(extra).encode()).errors[0].field


def test_a_server_error_says_what_the_service_said_and_is_not_logged_as_a_client_error(caplog):

    async def app(scope, receive, send):  # BentoML hides a 5xx's message behind this one
        await receive()
        scope[SERVER_ERROR] = "model m:1 failed to score this record; nothing was logged"
        body = b'{"error": "An unexpected error has occurred, please check the server log."}'
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": body})

    edge = Edge(app, [Endpoint("/predict")], max_body_bytes=1000)

    answer = asyncio.run(call_with(edge, b'{"record": {}}', "application/json"))
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "model m:1 failed to score this record; nothing was logged"
    assert not [r for r in caplog.records if r.name == "modelops.serving.edge"]
    caplog.clear()
    refused = asyncio.run(call_with(edge, b"{", "application/json"))
    assert refused.status_code == 400
    [logged] = [r for r in caplog.records if r.name == "modelops.serving.edge"]
    assert "invalid JSON" in logged.getMessage()
    assert logged.exc_info is None, "client errors are logged without a traceback"


async def call_with(app, body: bytes, media_type: str):
    """POST /predict to an ASGI app, in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        return await client.post("/predict", content=body, headers={"content-type": media_type})


def test_refused_fields_are_counted_by_schema_column_and_others_as_one():
    async def app(scope, receive, send):  # BentoML's answer to a record that breaks rules
        await receive()
        detail = [
            {"loc": ["body", "records", 3, "signal"], "msg": "must be at least 0"},
            {"loc": ["body", "records", 4, "signal"], "msg": "must be at least 0"},
            {"loc": ["body", "records", 4, "made_up_123"], "msg": "extra inputs"},
        ]
        body = json.dumps({"error": "invalid", "detail": detail}).encode()
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": body})

    edge = Edge(app, [Endpoint("/predict")], max_body_bytes=1000, fields=["signal", "worth"])

    def count(field: str) -> float:
        return REGISTRY.get_sample_value("modelops_refused_fields_total", {"field": field}) or 0

    before = {field: count(field) for field in ("signal", "worth", "other", "made_up_123")}
    answer = asyncio.run(call_with(edge, b'{"records": []}', "application/json"))
    assert answer.status_code == 400
    assert count("signal") - before["signal"] == 2
    assert count("other") - before["other"] == 1  # a name the client chose is no label
    assert count("worth") == before["worth"]
    assert count("made_up_123") == 0
