"""The one error shape and the escaping of client text (no server needed)."""

from __future__ import annotations

import json

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
