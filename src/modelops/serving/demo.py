"""The serving part of `make run`: serve the Bento briefly on 127.0.0.1, answer a few
holdout records, show their prediction-log records, stop the server."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

import httpx
import pandas as pd
import sqlalchemy as sa

from modelops import paths
from modelops.config import Settings
from modelops.serving.bento import free_port, serve_command, server_env, wait_ready
from modelops.serving.contract import ApiNames, requests_from_frame
from modelops.serving.predlog import PREDICTIONS, make_engine


def sample_records(settings: Settings, n: int = 4) -> list[dict[str, Any]]:
    """The first holdout positives and negatives, ``n`` in all."""
    schema = settings.data_schema
    holdout = pd.read_parquet(paths.HOLDOUT)
    positives = holdout[holdout[schema.target] == 1].head(n // 2)
    negatives = holdout[holdout[schema.target] == 0].head(n - len(positives))
    return requests_from_frame(pd.concat([positives, negatives]), schema)


def _line(answer: dict[str, Any], id_field: str) -> str:
    reasons = ", ".join(f"{r['feature']}={r['value']}" for r in answer["reasons"]) or "-"
    return (
        f"  {answer[id_field]}  score {answer['score']:.4f}  {answer['decision']:<8}"
        f"  {answer['route']} {answer['model_version']}  reasons: {reasons}"
    )


def run(settings: Settings, tag: str) -> None:
    """Serve ``tag``, send sample requests, print answers and log records, stop."""
    names = ApiNames.from_words(settings.words)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_env(settings)
    print(f"serving {tag} at {url} (prediction log: {env['MODELOPS_LOG_URL']})")
    server = subprocess.Popen(serve_command(tag, "127.0.0.1", port), env=env)
    try:
        wait_ready(url, server)
        answers = [
            httpx.post(f"{url}/predict", json={names.record: record}, timeout=30)
            .raise_for_status()
            .json()
            for record in sample_records(settings)
        ]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    print("answers:")
    print("\n".join(_line(a, names.id_field) for a in answers))
    ids = [a["request_id"] for a in answers]
    query = (
        sa.select(
            PREDICTIONS.c.request_id,
            PREDICTIONS.c.record_id,
            PREDICTIONS.c.model_version,
            PREDICTIONS.c.route,
            PREDICTIONS.c.score,
            PREDICTIONS.c.decision,
            PREDICTIONS.c.latency_ms,
        )
        .where(PREDICTIONS.c.request_id.in_(ids))
        .order_by(PREDICTIONS.c.id)
    )
    engine = make_engine(env["MODELOPS_LOG_URL"])
    with engine.connect() as connection:
        records = pd.DataFrame(
            connection.execute(query).all(), columns=list(query.selected_columns.keys())
        )
    engine.dispose()
    print(f"their prediction-log records ({len(records)} of {len(ids)}):")
    print(records.to_string(index=False))
