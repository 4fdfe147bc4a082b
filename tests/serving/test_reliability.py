"""Reliability under load, 127.0.0.1 only, bounded in requests and time: promotion and
rollback drop nothing; SIGTERM drains in-flight requests; the prediction log holds
exactly one record per answered request plus one per shadow score; a database outage
does not fail requests."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa

from modelops.serving.bento import free_port
from modelops.serving.predlog import PREDICTIONS
from tests.serving.support import running_server, sample_requests, write_state

pytestmark = [pytest.mark.integration, pytest.mark.heavy]


@pytest.fixture(scope="module")
def samples(settings, train_holdout):
    return sample_requests(settings, train_holdout[1], 200)


def load(
    url: str,
    bodies: list[dict],
    stop: threading.Event,
    results: list,
    max_requests: int,
) -> None:
    """One client: /predict in a loop until ``stop`` or ``max_requests``."""
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(max_requests):
            if stop.is_set():
                return
            try:
                answer = client.post("/predict", json=bodies[i % len(bodies)])
                results.append((answer.status_code, answer.json()))
            except httpx.HTTPError as exc:
                results.append((0, repr(exc)))


def log_records(url: str) -> list:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(PREDICTIONS.c.request_id, PREDICTIONS.c.route, PREDICTIONS.c.model_version)
        ).all()
    engine.dispose()
    return rows


def test_promote_and_roll_back_under_load_drop_nothing_and_log_everything(
    versions, samples, names, tmp_path
):
    champion, challenger = versions
    steps = [  # (seconds after load starts, desired state)
        (1.0, {"champion": champion, "challenger": challenger, "strategy": {"type": "shadow"}}),
        (
            2.0,
            {
                "champion": champion,
                "challenger": challenger,
                "strategy": {"type": "canary", "percent": 50},
            },
        ),
        (3.0, {"champion": challenger, "challenger": champion, "strategy": {"type": "blue_green"}}),
        (4.0, {"champion": champion, "challenger": challenger, "strategy": {"type": "blue_green"}}),
    ]
    results: list = []
    bodies = [{names.record: r} for r in samples]
    with running_server(tmp_path, {"champion": champion}) as server:
        stop = threading.Event()
        clients = [
            threading.Thread(target=load, args=(server.url, bodies, stop, results, 3000))
            for _ in range(8)
        ]
        start = time.monotonic()
        for client in clients:
            client.start()
        for at, state in steps:
            time.sleep(max(0.0, start + at - time.monotonic()))
            write_state(server.state_file, **state)
        time.sleep(max(0.0, start + 5.0 - time.monotonic()))
        final = list(results[-20:])
        stop.set()
        for client in clients:
            client.join(timeout=60)
        assert server.stop() == 0
    failed = [r for r in results if r[0] != 200]
    assert not failed, failed[:5]
    answers = [r[1] for r in results]
    assert len(answers) > 200, "the load ran"
    seen = Counter((a["route"], a["model_version"]) for a in answers)
    assert seen[("champion", challenger)] > 0, "the promotion served the challenger as champion"
    assert seen[("challenger", challenger)] > 0, "the canary sent some entities to the challenger"
    assert all(a["model_version"] == champion for _, a in final), "rolled back"
    records = log_records(server.log_url)
    answered = [a["request_id"] for a in answers]
    served = Counter(r.request_id for r in records if r.route != "shadow")
    shadows = [r for r in records if r.route == "shadow"]
    assert sorted(served) == sorted(answered)
    assert set(served.values()) == {1}
    assert shadows
    assert len({r.request_id for r in shadows}) == len(shadows)
    assert {r.request_id for r in shadows} <= set(answered)
    assert {r.model_version for r in shadows} == {challenger}


def in_progress(client: httpx.Client, endpoint: str) -> float:
    """The gauge of requests being handled on ``endpoint``."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'modelops_http_requests_in_progress{{endpoint="{endpoint}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_sigterm_drains_in_flight_requests_and_flushes_the_log(versions, samples, names, tmp_path):
    batch = {names.records: samples[:200]}
    with running_server(
        tmp_path, {"champion": versions[0]}, serving={"max_batch_size": 200}
    ) as server:
        clients = [httpx.Client(base_url=server.url, timeout=60) for _ in range(16)]
        for client in clients:  # connections accepted before the requests start
            client.get("/livez").raise_for_status()
        with ThreadPoolExecutor(16) as pool, httpx.Client(base_url=server.url) as probe:
            futures = [pool.submit(c.post, "/predict_batch", json=batch) for c in clients]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # every request reached the server
                busy = in_progress(probe, "/predict_batch")
                if busy + sum(f.done() for f in futures) >= 16:
                    break
            server.process.terminate()
            assert busy >= 4, "SIGTERM came while requests were in flight"
            statuses = [f.result().status_code for f in futures]
        assert server.process.wait(timeout=60) == 0
        for client in clients:
            client.close()
    assert statuses == [200] * 16
    records = log_records(server.log_url)
    assert len(records) == 16 * 200
    assert len({r.request_id for r in records}) == len(records)


def test_a_database_outage_fails_no_request_and_shows_in_metrics(
    versions, samples, names, tmp_path
):
    down = f"postgresql+psycopg://nobody:x@127.0.0.1:{free_port()}/none?connect_timeout=1"
    with (
        running_server(tmp_path, {"champion": versions[0]}, log_url=down) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        statuses = [
            client.post("/predict", json={names.record: r}).status_code for r in samples[:50]
        ]
        time.sleep(1.0)
        metrics = client.get("/metrics").text
        assert client.get("/readyz").status_code == 200
    assert statuses == [200] * 50
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in metrics.splitlines()
        if line.startswith("modelops_prediction_log_")
    }
    assert values["modelops_prediction_log_write_failures_total"] >= 1
    assert values["modelops_prediction_log_pending"] == 50
