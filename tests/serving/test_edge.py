"""The service under attack (a real `bentoml serve` on 127.0.0.1, bounded traffic): one
bad request never fails another, every error has one shape, nothing a client sends
reaches a metric label or floods the log, and strings no database can store are refused.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa

from modelops.schema import ColumnType
from modelops.serving.predlog import PREDICTIONS
from tests.serving.support import (
    Fragile,
    poison_values,
    running_server,
    sample_requests,
    save_version,
)

pytestmark = pytest.mark.integration
TOKEN = "edge-admin-token"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def poison(settings, train_holdout):
    return poison_values(settings, train_holdout[1])


@pytest.fixture(scope="module")
def fragile(settings, fitted, train_holdout, poison, tmp_path_factory):
    """A model version that raises for one value of a float feature, NaN for another."""
    train, holdout = train_holdout
    model = Fragile(fitted, *poison)
    return save_version(settings, model, train, holdout, tmp_path_factory.mktemp("fragile"))


@pytest.fixture(scope="module")
def server(fragile, tmp_path_factory):
    with running_server(
        tmp_path_factory.mktemp("edge"),
        {"champion": fragile},
        env={"MODELOPS_ADMIN_TOKEN": TOKEN},
        serving={"max_batch_size": 8, "max_body_bytes": 20_000},
    ) as running:
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def records(settings, train_holdout):
    return sample_requests(settings, train_holdout[1], 60)


def text_column(settings) -> str:
    """A string field of the API's record (the id column if it is one); skips without."""
    schema = settings.data_schema
    free = [
        name
        for name, spec in schema.columns.items()
        if (name != schema.target and spec.type == ColumnType.STRING)
        or (spec.type == ColumnType.CATEGORY and schema.unknown_categories != "error")
    ]
    if not free:
        pytest.skip("the schema has no free-text field")
    return schema.id_column if schema.id_column in free else free[0]


def logged(url: str, request_ids: list[str]) -> list:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.select(PREDICTIONS.c.request_id).where(PREDICTIONS.c.request_id.in_(request_ids))
            ).all()
    finally:
        engine.dispose()


def wait_logged(url: str, request_ids: list[str], timeout_s: float = 10.0) -> list:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = logged(url, request_ids)
        if len(rows) >= len(request_ids) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def metric(text: str, prefix: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def assert_problem(answer: httpx.Response, status: int, *words: str) -> dict:
    """The one error shape: status, title, detail naming ``words``, field errors."""
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert set(body) == {"status", "title", "detail", "errors"}
    assert body["status"] == status
    for word in words:
        assert word in body["detail"], (word, body)
    return body


def test_a_poisoned_request_fails_alone_and_every_valid_one_is_answered_and_logged(
    server, records, names, poison, settings
):
    column, fail, nan = poison
    poisoned = {
        "fail": {names.record: records[0] | {column: fail}},
        "nan": {names.record: records[0] | {column: nan}},
        "batch": {names.records: [records[1], records[2] | {column: fail}]},
    }
    if int_fields(settings):  # the request of the original report: an int beyond float64
        poisoned["huge"] = {names.record: records[0] | dict.fromkeys(int_fields(settings), 10**309)}
    bodies = [("valid", {names.record: r}) for r in records] * 2
    for kind, body in poisoned.items():
        for position in (5, 40, 90):
            bodies.insert(position, (kind, body))
    with ThreadPoolExecutor(16) as pool, httpx.Client(base_url=server.url, timeout=30) as http:

        def send(kind: str, body: dict) -> tuple[str, httpx.Response]:
            return kind, http.post("/predict_batch" if kind == "batch" else "/predict", json=body)

        answers = list(pool.map(lambda kb: send(*kb), bodies))
        metrics = http.get("/metrics").text
    valid = [a for kind, a in answers if kind == "valid"]
    assert [a.status_code for a in valid] == [200] * len(valid)
    for kind, answer in answers:
        if kind in ("fail", "batch"):
            assert_problem(answer, 422, "failed to score this record", "nothing was logged")
        elif kind == "nan":
            assert_problem(answer, 422, "non-finite score", "nothing was logged")
        elif kind == "huge":
            assert_problem(answer, 400, "less than or equal to")
    request_ids = [a.json()["request_id"] for a in valid]
    assert len(wait_logged(server.log_url, request_ids)) == len(valid)
    assert metric(metrics, "modelops_batch_rows_count") < len(answers), "calls were shared"
    assert metric(metrics, 'modelops_scoring_failures_total{reason="exception"') >= 6
    assert metric(metrics, 'modelops_scoring_failures_total{reason="non_finite"') >= 3


def int_fields(settings) -> list[str]:
    schema = settings.data_schema
    return [
        n
        for n in schema.features
        if schema.columns[n].type == ColumnType.INT and not schema.columns[n].allowed
    ]


def test_every_error_has_one_shape_naming_what_is_wrong(client, records, names, settings):
    predict = {"content-type": "application/json"}
    body = {names.record: records[0]}
    assert_problem(client.post("/predict", json={names.record: {}}), 400, names.record)
    assert_problem(client.post("/predict", content=b"{", headers=predict), 400, "invalid JSON")
    twice = f'{{"{names.record}": {{"a": 1, "a": 2}}}}'.encode()
    assert_problem(
        client.post("/predict", content=twice, headers=predict), 400, "'a' appears twice"
    )
    assert_problem(client.post("/predict", headers=predict), 400, "empty")
    nan = f'{{"{names.record}": {{"x": NaN}}}}'.encode()
    assert_problem(client.post("/predict", content=nan, headers=predict), 400, "NaN")
    big = {names.records: [records[0]] * 100}
    assert_problem(client.post("/predict_batch", json=big), 413, "max_body_bytes")
    assert_problem(client.get("/predict"), 405)
    assert_problem(client.post("/no/such/path", json=body), 404)
    unknown = client.post("/feedback", json={names.id_field: "never-seen", "label": 1})
    assert_problem(unknown, 404, "never-seen")
    answer = client.post("/predict", json=body).raise_for_status().json()
    label = {"request_id": answer["request_id"], "label": 1}
    assert client.post("/feedback", json=label).status_code == 200
    assert_problem(client.post("/feedback", json=label), 409, "already has a label")
    extra = assert_problem(client.post("/predict", json={names.record: records[0] | {"x": 1}}), 400)
    assert [e["field"] for e in extra["errors"]] == [f"{names.record}.x"]
    schema = settings.data_schema
    feature = next(f for f in schema.features if not schema.columns[f].nullable)
    missing = {k: v for k, v in records[0].items() if k != feature}
    lacking = assert_problem(client.post("/predict", json={names.record: missing}), 400)
    assert [e["field"] for e in lacking["errors"]] == [f"{names.record}.{feature}"]


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "multipart/form-data; boundary=xyz"},
        {"content-type": "multipart/form-data"},
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "application/json; charset=latin-1"},
        {},
    ],
)
@pytest.mark.parametrize("path", ["/predict", "/predict_batch", "/feedback", "/metadata"])
def test_only_json_is_accepted(client, headers, path):
    answer = client.post(path, content=b'--xyz\r\n{"a": 1}\r\n--xyz--', headers=headers)
    assert_problem(answer, 415, "application/json")


def test_strict_types_refuse_numbers_as_timestamps_and_booleans_as_labels(
    client, records, names, settings
):
    time_column = settings.data_schema.time_column
    if time_column:
        for value in (1714533120, "1714533120", "2025-05-01"):
            body = {names.record: records[0] | {time_column: value}}
            assert_problem(client.post("/predict", json=body), 400, time_column)
    for label in (True, 1.0, "1", 2):
        answer = client.post("/feedback", json={"request_id": "abc", "label": label})
        assert_problem(answer, 400, "label")


@pytest.mark.parametrize(
    "body", [b"{", b"--x\r\n\r\n--x--", b"x" * 50_000, b'{"champion": "a", "champion": "b"}']
)
def test_the_admin_token_is_checked_before_the_body(client, body):
    for headers in ({}, {"authorization": "Bearer guess"}):
        for media in ("application/json", "multipart/form-data; boundary=x"):
            answer = client.post(
                "/admin/reload", content=body, headers=headers | {"content-type": media}
            )
            assert_problem(answer, 401, "admin token")
    ok = client.post("/admin/reload", headers={"authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200


def test_no_metric_label_comes_from_the_client(client, records, names, tmp_path):
    before = client.get("/metrics").text
    for i in range(30):
        client.post(f"/probe-{i}-{'x' * 3000}", json={names.record: records[0]})
        client.get(f"/{i}?q={'y' * 100}")
    after = client.get("/metrics").text
    series = {line.split(" ")[0] for line in after.splitlines() if not line.startswith("#")}
    old = {line.split(" ")[0] for line in before.splitlines() if not line.startswith("#")}
    grown = {s.split("{")[0] for s in series - old}
    assert "probe" not in after
    assert max(len(line) for line in after.splitlines()) < 300
    assert metric(after, 'modelops_http_requests_total{endpoint="other",status="404"}') >= 60
    # new series may only be the 'other' endpoint's (first 404s of this server)
    assert all('endpoint="other"' in s for s in series - old), grown
    assert not [line for line in after.splitlines() if line.startswith("bentoml_")]
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool is missing: `make system-deps` installs Debian's prometheus"
        if os.environ.get("MODELOPS_REQUIRE_SYSTEM_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=after, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not checked.stdout.strip(), checked.stdout


def test_client_errors_are_logged_once_escaped_bounded_and_rate_limited(
    client, server, records, names
):
    start = server.output.stat().st_size
    forged = "x\n2026-01-01T00:00:00+0000 [INFO] admin reload applied"
    client.post("/feedback", json={names.id_field: forged, "label": 1})
    client.post("/feedback", json={names.id_field: "z" * 900_000, "label": 1})
    client.post("/%0A[INFO]%20forged%20path%20line", json={})  # a newline in the path
    for _ in range(300):  # a flood: far more than the burst of 20
        client.post("/predict", json={names.record: {"bad": "field"}})
    time.sleep(0.5)
    with server.output.open("rb") as log:
        log.seek(start)
        written = log.read().decode("utf-8", "replace")
    lines = written.splitlines()
    assert "Traceback" not in written
    assert not [line for line in lines if "admin reload applied" in line and "WARNING" not in line]
    assert not [line for line in lines if line.startswith("[INFO] forged")]
    assert all(len(line) < 1000 for line in lines), max(map(len, lines))
    warnings = [line for line in lines if "[WARNING]" in line]
    assert 1 <= len(warnings) <= 60, len(warnings)  # at most the burst, then 5 a second
    assert len(written) < 60 * 1000
    metrics = client.get("/metrics").text
    assert metric(metrics, "modelops_client_errors_unlogged_total") >= 200


def test_strings_a_database_cannot_store_are_refused_and_nothing_else_is_lost_on_postgresql(
    versions, records, names, settings, postgres_url, tmp_path
):
    column = text_column(settings)
    bad_values = ["a\x00b", "tab\there", "bell\x07", "del\x7f", "c1\x85", "new\nline"]
    rng = random.Random(0)
    bodies = []
    for i, record in enumerate(records):
        bad = rng.random() < 0.3
        value = rng.choice(bad_values) if bad else record[column]
        if i % 3 == 0:  # a batch: one bad record fails the whole request
            bodies.append((bad, "/predict_batch", {names.records: [record | {column: value}]}))
        else:
            bodies.append((bad, "/predict", {names.record: record | {column: value}}))
    with (
        running_server(tmp_path, {"champion": versions[0]}, log_url=postgres_url) as server,
        ThreadPoolExecutor(8) as pool,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        answers = list(pool.map(lambda b: (b[0], http.post(b[1], json=b[2])), bodies))
    request_ids = []
    for bad, answer in answers:
        if bad:
            assert_problem(answer, 400, column, "control characters")
        else:
            assert answer.status_code == 200, answer.text
            body = answer.json()
            request_ids += [a["request_id"] for a in (body if isinstance(body, list) else [body])]
    assert 0 < len(request_ids) < len(records)
    assert len(logged(postgres_url, request_ids)) == len(request_ids)
