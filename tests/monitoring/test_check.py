"""`make monitor` end to end on a synthetic prediction log: a stationary stream passes,
a concept shift seen only through delayed labels calls for retraining, an old model is
stale; the report and the verdict name every reason."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from modelops import paths
from modelops.monitoring import check
from modelops.serving.bento import free_port
from modelops.serving.predlog import FEEDBACK, PREDICTIONS, make_engine, migrate

NOW = pd.Timestamp("2026-03-01", tz="UTC")
WEEKS, ROWS, RATE = 10, 2000, 0.05


def synthetic(seed: int, shifted_weeks: int = 0) -> tuple[pd.DataFrame, float]:
    """WEEKS weeks of scored rows before NOW; in the last ``shifted_weeks`` the labels of
    half the positives no longer follow the score (inputs and scores look the same)."""
    rng = np.random.default_rng(seed)
    n = WEEKS * ROWS
    label = rng.random(n) < RATE
    score = 1 / (1 + np.exp(-(-3.5 + 2.0 * label + rng.normal(0, 1, n))))
    age_days = np.sort(rng.uniform(0, WEEKS * 7, n))[::-1]
    late = age_days < shifted_weeks * 7
    swap = late & label & (rng.random(n) < 0.5)
    score[swap] = rng.permutation(score[~label])[: swap.sum()]
    frame = pd.DataFrame(
        {
            "created_at": (NOW - pd.to_timedelta(age_days, unit="D")).floor("us"),
            "score": score,
            "label": label.astype(int),
            "delay_days": rng.gamma(2.0, 2.0, n),  # labels come back after days
        }
    )
    return frame, float(roc_auc_score(label[~late], score[~late]))


def write_log(root, frame: pd.DataFrame, version: str, inputs: dict) -> str:
    url = f"sqlite:///{root / 'log.db'}"
    engine = make_engine(url)
    migrate(engine)
    ids = [f"r{i}" for i in range(len(frame))]
    base = {"automation": "partial", "latency_ms": 1.0, "reasons": [], "inputs": inputs}
    predictions = [
        base | {"request_id": i, "record_id": i, "route": "champion", "model_version": version,
                "created_at": t.to_pydatetime(), "score": float(s), "decision": "approve"}
        for i, t, s in zip(ids, frame["created_at"], frame["score"], strict=True)
    ]  # fmt: skip
    arrived = (frame["created_at"] + pd.to_timedelta(frame["delay_days"], unit="D")).dt.floor("us")
    feedback = [
        {"request_id": i, "record_id": i, "label": int(y), "received_at": t.to_pydatetime()}
        for i, y, t in zip(ids, frame["label"], arrived, strict=True)
        if t < NOW
    ]
    with engine.begin() as connection:
        connection.execute(PREDICTIONS.insert(), predictions)
        connection.execute(FEEDBACK.insert(), feedback)
    engine.dispose()
    return url


def project(tmp_path, settings, frame: pd.DataFrame, holdout_auc: float, trained_until: str):
    """A checkout whose current model is the served version; the log's URL."""
    name = settings.model.name
    threshold = float(np.quantile(frame["score"], 1 - settings.evaluation.review_rate))
    lineage = {
        "model_id": f"{name}-0123456789ab",
        "data": {
            "train": {"time_max": trained_until},
            "holdout": {"rows": len(frame), "positives": int(frame["label"].sum())},
        },
        "metrics": {"roc_auc": {"value": holdout_auc}},
        "decision": {"threshold": threshold, "review_rate": settings.evaluation.review_rate},
    }
    (tmp_path / paths.LINEAGE).parent.mkdir(parents=True)
    (tmp_path / paths.LINEAGE).write_text(json.dumps(lineage))
    costs = dict.fromkeys(settings.evaluation.costs.columns(), 25.0)
    return write_log(tmp_path, frame, f"{name}:0123456789ab", costs)


@pytest.fixture
def fresh():
    return str((NOW - pd.Timedelta(days=20)).date())


def test_a_stationary_stream_is_ok(tmp_path, settings, fresh):
    frame, auc = synthetic(seed=1)
    url = project(tmp_path, settings, frame, auc, fresh)
    verdict = check.run(tmp_path, settings, url, NOW.to_pydatetime(), tmp_path / "out")
    assert verdict.level == "ok", verdict.reasons
    report = (tmp_path / "out/report.md").read_text()
    assert report.startswith("# Monitoring: OK")
    assert "| judged |" in report
    assert "](charts.png)" in report
    assert (tmp_path / "out/charts.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((tmp_path / "out/verdict.json").read_text())["level"] == "ok"


def test_a_concept_shift_seen_only_through_labels_calls_for_retraining(tmp_path, settings, fresh):
    frame, auc = synthetic(seed=2, shifted_weeks=4)
    url = project(tmp_path, settings, frame, auc, fresh)
    verdict = check.run(tmp_path, settings, url, NOW.to_pydatetime(), tmp_path / "out")
    assert verdict.level == "retrain"
    [decay] = [f for f in verdict.findings if f.detector == "decay" and f.level == "retrain"]
    assert "is below its holdout" in decay.reason
    # the newer, immature window shows it too, as a warning
    provisional = [f for f in verdict.findings if f.detector == "decay" and f.level == "warn"]
    assert all("(provisional:" in f.reason for f in provisional)
    assert all(f.detector != "staleness" for f in verdict.findings)


def test_an_old_model_is_stale(tmp_path, settings):
    frame, auc = synthetic(seed=3)
    url = project(tmp_path, settings, frame, auc, "2025-06-01")
    verdict = check.run(tmp_path, settings, url, NOW.to_pydatetime(), tmp_path / "out")
    [stale] = [f for f in verdict.findings if f.detector == "staleness"]
    assert stale.level == "retrain"
    assert "max_model_age_days 56" in stale.reason
    assert verdict.level == "retrain"
    assert f"staleness: {stale.reason}" in verdict.reasons


def test_drifted_inputs_and_an_upstream_change_are_named_and_only_warn(
    tmp_path, settings, reference, profile, window
):
    """The window's inputs come from the log through the database's counts: one numeric
    feature shifted by half its SD and one field's unit changed (x100) are named in the
    report; neither calls for retraining on its own."""
    from tests.monitoring.conftest import write_log as log_rows

    # continuous enough that half an SD crosses bins (a 0/1 number has one cut)
    numeric = [f for f, d in profile.features.items() if d.kind == "numeric" and len(d.cuts) >= 10]
    if len(numeric) < 2:
        pytest.skip("the schema under test has fewer than two continuous features")
    moved, scaled = numeric[:2]
    live = window.copy()
    live[moved] = live[moved] + 0.5 * profile.features[moved].sd
    live[scaled] = live[scaled] * 100
    name = settings.model.name
    tag = f"{name}:0123456789ab"
    (tmp_path / paths.LINEAGE).parent.mkdir(parents=True)
    lineage = {
        "model_id": f"{name}-0123456789ab",
        "data": {"train": {"time_max": None}, "holdout": {"rows": 1000, "positives": 50}},
        "metrics": {"roc_auc": {"value": 0.8}},
        "decision": {"threshold": 0.1, "review_rate": 0.05},
    }
    (tmp_path / paths.LINEAGE).write_text(json.dumps(lineage))
    profile.save(tmp_path / paths.PROFILE)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    start = NOW - pd.Timedelta(days=6)
    log_rows(url, live.drop(columns=[settings.data_schema.target]), start=start, version=tag)
    verdict = check.run(tmp_path, settings, url, NOW.to_pydatetime(), tmp_path / "out")
    assert verdict.level == "warn"
    detectors = {f.detector: f.reason for f in verdict.findings}
    assert moved in detectors["data drift"]
    assert scaled in detectors["data drift"]
    assert f"{scaled} out_of_range" in detectors["upstream"]
    report = (tmp_path / "out/report.md").read_text()
    assert "## Data drift" in report
    assert f"| {moved} |" in report
    assert "](drift.png)" in report
    assert (tmp_path / "out/drift.png").read_bytes().startswith(b"\x89PNG")


def test_a_shadow_is_compared_with_the_champion_on_the_same_requests(tmp_path, settings, fresh):
    frame, auc = synthetic(seed=4)
    url = project(tmp_path, settings, frame, auc, fresh)
    engine = make_engine(url)
    latest = frame[frame["created_at"] >= NOW - pd.Timedelta(days=7)]
    shadow = [
        {"request_id": f"r{i}", "record_id": f"r{i}", "route": "shadow", "automation": "partial",
         "model_version": "other:1", "created_at": t.to_pydatetime(), "score": float(s) / 2,
         "decision": "approve", "latency_ms": 1.0, "reasons": [], "inputs": {}}
        for i, t, s in zip(latest.index, latest["created_at"], latest["score"], strict=True)
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(PREDICTIONS.insert(), shadow)
    engine.dispose()
    check.run(tmp_path, settings, url, NOW.to_pydatetime(), tmp_path / "out")
    report = (tmp_path / "out/report.md").read_text()
    section = report.split("## Champion and challenger")[1].split("##")[0]
    assert f"on the {len(latest):,} requests both scored: score rank correlation 1.000" in section


METRICS = b"""# HELP modelops_refused_fields_total Fields at fault in refused requests (400)
# TYPE modelops_refused_fields_total counter
modelops_refused_fields_total{field="signal"} 12.0
modelops_refused_fields_total{field="other"} 3.0
# HELP modelops_http_requests_total HTTP requests answered
# TYPE modelops_http_requests_total counter
modelops_http_requests_total{endpoint="/predict",status="200"} 900.0
modelops_http_requests_total{endpoint="/predict",status="400"} 14.0
"""


@pytest.fixture
def metrics_url() -> Iterator[str]:
    """A /metrics on 127.0.0.1 with the service's refusal counters."""

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(METRICS)

        def log_message(self, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def test_the_services_refusals_are_reported_per_field(tmp_path, settings, fresh, metrics_url):
    frame, auc = synthetic(seed=1)
    url = project(tmp_path, settings, frame, auc, fresh)
    verdict = check.run(tmp_path, settings, url, NOW.to_pydatetime(), tmp_path / "a", metrics_url)
    assert verdict.level == "ok", verdict.reasons  # shown, not judged: counters since start
    report = (tmp_path / "a/report.md").read_text()
    assert "fields at fault signal 12, other 3" in report
    assert "/predict 400: 14" in report
    down = f"http://127.0.0.1:{free_port()}/metrics"
    check.run(tmp_path, settings, url, NOW.to_pydatetime(), tmp_path / "b", down)
    assert "could not read" in (tmp_path / "b/report.md").read_text()
