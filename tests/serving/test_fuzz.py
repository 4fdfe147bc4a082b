"""Generated bad input (hypothesis, 1,200 requests against a real server): every
malformed request gets a 4xx whose message names the offending field; never a 5xx."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from modelops.schema import ColumnType, Role
from modelops.serving.contract import ApiNames
from tests.serving.support import running_server, sample_requests

pytestmark = pytest.mark.integration
MAX_BATCH = 4
FUZZ = hypothesis_settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def client(versions, tmp_path_factory):
    with (
        running_server(
            tmp_path_factory.mktemp("fuzz"),
            {"champion": versions[0]},
            serving={"max_batch_size": MAX_BATCH},
        ) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        yield http


@pytest.fixture(scope="module")
def valid(settings, train_holdout):
    return sample_requests(settings, train_holdout[1], 1)[0]


def wrong_values(kind: ColumnType):
    """JSON values of another type than ``kind`` accepts."""
    others = {
        ColumnType.FLOAT: st.one_of(
            st.text(max_size=5), st.booleans(), st.lists(st.integers(), max_size=2)
        ),
        ColumnType.INT: st.one_of(
            st.text(max_size=5),
            st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)),
            st.booleans(),
        ),
        ColumnType.BOOL: st.one_of(
            st.integers(), st.text(max_size=5), st.floats(allow_nan=False, allow_infinity=False)
        ),
        ColumnType.CATEGORY: st.one_of(
            st.integers(), st.booleans(), st.lists(st.text(max_size=3), max_size=2)
        ),
        ColumnType.STRING: st.one_of(
            st.integers(),
            st.booleans(),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        ),
        ColumnType.DATETIME: st.one_of(
            st.booleans(),
            st.lists(st.integers(), max_size=2),
            st.text(alphabet="xyz", min_size=1, max_size=5),
        ),
    }
    return others[kind]


@st.composite
def malformed(draw, schema):
    """(mutation, field, how to change the valid record)."""
    columns = {n: s for n, s in schema.columns.items() if s.role != Role.TARGET}
    required = [
        n for n, s in columns.items() if not s.nullable and s.role not in (Role.TIME, Role.IGNORE)
    ]
    bounded = [n for n, s in columns.items() if s.min is not None or s.max is not None]
    categorical = [n for n, s in columns.items() if s.type == ColumnType.CATEGORY]
    kinds = ["extra", "type"] + ["missing"] * bool(required) + ["range"] * bool(bounded)
    kind = draw(st.sampled_from([*kinds, *["category"] * bool(categorical)]))
    if kind == "missing":
        name = draw(st.sampled_from(required))
        return name, lambda t: {k: v for k, v in t.items() if k != name}
    if kind == "extra":
        name = draw(
            st.text(alphabet="abcdefghij_", min_size=3, max_size=12).filter(
                lambda n: n not in columns
            )
        )
        value = draw(st.one_of(st.integers(), st.text(max_size=4), st.none()))
        return name, lambda t: t | {name: value}
    if kind == "type":
        name = draw(st.sampled_from(sorted(columns)))
        value = draw(wrong_values(columns[name].type))
        return name, lambda t: t | {name: value}
    if kind == "range":
        name = draw(st.sampled_from(bounded))
        spec = columns[name]
        below = spec.min - draw(st.integers(1, 10**6)) if spec.min is not None else None
        above = spec.max + draw(st.integers(1, 10**6)) if spec.max is not None else None
        value = draw(st.sampled_from([v for v in (below, above) if v is not None]))
        value = int(value) if spec.type == ColumnType.INT else float(value)
        return name, lambda t: t | {name: value}
    name = draw(st.sampled_from(categorical))
    value = draw(
        st.text(min_size=1, max_size=12).filter(lambda v: v not in (columns[name].categories or ()))
    )
    return name, lambda t: t | {name: value}


def assert_names(answer: httpx.Response, field: str) -> None:
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    assert field in answer.json()["detail"], (field, answer.text)


def test_malformed_records_get_a_4xx_naming_the_field(client, valid, settings):
    names = ApiNames.from_words(settings.words)

    @FUZZ
    @given(case=malformed(settings.data_schema), batch=st.booleans())
    def check(case, batch):
        field, mutate = case
        bad = mutate(dict(valid))
        if batch:
            answer = client.post("/predict_batch", json={names.records: [valid, bad]})
        else:
            answer = client.post("/predict", json={names.record: bad})
        assert_names(answer, field)

    check()


def test_arbitrary_json_bodies_never_get_a_5xx(client):
    json_values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    )

    @hypothesis_settings(FUZZ, max_examples=200)
    @given(
        body=json_values | st.binary(max_size=64),
        endpoint=st.sampled_from(["/predict", "/predict_batch", "/feedback"]),
    )
    def check(body, endpoint):
        if isinstance(body, bytes):
            answer = client.post(
                endpoint, content=body, headers={"content-type": "application/json"}
            )
        else:
            answer = client.post(endpoint, json=body)
        assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == answer.status_code

    check()


@pytest.mark.parametrize("size", [0, MAX_BATCH + 1])
def test_empty_and_oversized_batches_are_refused(client, valid, settings, size):
    envelope = ApiNames.from_words(settings.words).records
    answer = client.post("/predict_batch", json={envelope: [valid] * size})
    assert_names(answer, envelope)
