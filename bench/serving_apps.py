"""The peers of the serving benchmark (bench/serving_bench.py), each serving the same
fitted Pipeline (BENCH_MODEL, a joblib file) without our features:

- `fastapi_sync` / `fastapi_async`: a minimal FastAPI app, one record per request,
  DataFrame -> Pipeline.predict_proba; `def` (thread pool) and `async def` (event loop).
- `PlainBatching`: a minimal BentoML service with BentoML's adaptive batching.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import joblib
import pandas as pd
from fastapi import FastAPI

MODEL = os.environ.get("BENCH_MODEL", "models/model.joblib")


def _load() -> Any:
    return joblib.load(MODEL)


def _score(model: Any, rows: list[dict[str, Any]]) -> list[float]:
    frame = pd.DataFrame(rows)[list(model.feature_names_in_)]
    return [float(p) for p in model.predict_proba(frame)[:, 1]]


fastapi_sync = FastAPI()
fastapi_async = FastAPI()
_model = _load() if os.environ.get("BENCH_APP", "").startswith("fastapi") else None


@fastapi_sync.post("/predict")
def predict_sync(body: dict[str, Any]) -> dict[str, float]:
    """Score one record in FastAPI's thread pool."""
    return {"score": _score(_model, [body["record"]])[0]}


@fastapi_async.post("/predict")
async def predict_async(body: dict[str, Any]) -> dict[str, float]:
    """Score one record on the event loop."""
    return {"score": _score(_model, [body["record"]])[0]}


@bentoml.service(name="plain-batching", workers=1)
class PlainBatching:
    """BentoML adaptive batching of the same Pipeline, nothing else."""

    def __init__(self) -> None:
        self.model = _load()

    @bentoml.api(batchable=True)  # BentoML's default batch size and latency budget
    def predict(self, records: list[dict[str, Any]]) -> list[float]:
        """Scores for the (merged) batch."""
        return _score(self.model, records)
