"""The BentoML service: `make serve` runs it, `make bento` packages it.

At import it reads params.yaml (MODELOPS_PARAMS) and the desired-state file
(MODELOPS_DESIRED_STATE, default serving.desired_state); the models that file names are
declared as class attributes, so `bentoml build` packages them. Everything else (routing,
batching, decisions, the prediction log) lives in engine.py and is tested without BentoML.
"""

from __future__ import annotations

import gc
import hmac
import logging
import os
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, Literal

import bentoml
from bentoml.exceptions import BadInput, BentoMLException, NotFound, ServiceUnavailable
from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError

from modelops.config import load_settings
from modelops.errors import InputError
from modelops.serving.contract import FeedbackResult, Prediction, transaction_model
from modelops.serving.engine import Engine, NotServingError, StateWatcher
from modelops.serving.guard import RequestGuard
from modelops.serving.predlog import DuplicateLabelError, PredictionLog, UnknownPredictionError
from modelops.serving.state import load_state, parse_state
from modelops.serving.store import load_version, resolve

log = logging.getLogger("modelops.serving")

SETTINGS = load_settings(os.environ.get("MODELOPS_PARAMS", "params.yaml"))
SCHEMA = SETTINGS.data_schema
SERVING = SETTINGS.serving
STATE_FILE = Path(os.environ.get("MODELOPS_DESIRED_STATE", str(SERVING.desired_state)))
BOOT_STATE = load_state(STATE_FILE, resolve)
Transaction = transaction_model(SCHEMA)
Batch = Annotated[
    list[Transaction],  # type: ignore[valid-type]
    Field(min_length=1, max_length=SERVING.max_batch_size),
]


class Conflict(BentoMLException):
    """409: the request conflicts with what is stored."""

    error_code = HTTPStatus.CONFLICT


class Unauthorized(BentoMLException):
    """401: the admin endpoint without a valid token."""

    error_code = HTTPStatus.UNAUTHORIZED


@bentoml.service(
    name="card-fraud-service",
    workers=SERVING.workers,
    traffic={"timeout": 30},
    logging={"access": {"enabled": SERVING.access_log}},
    # BentoML traces every request with OpenTelemetry; off by default for the hot paths
    tracing={} if SERVING.tracing else {"excluded_urls": ["/predict", "/feedback"]},
    envs=[{"name": "OMP_NUM_THREADS", "value": "1"}],
)
class FraudScoring:
    """Card-fraud scoring: champion/challenger routing, automation degrees, a prediction log."""

    champion_model = bentoml.models.BentoModel(BOOT_STATE.champion)
    if BOOT_STATE.challenger:
        challenger_model = bentoml.models.BentoModel(BOOT_STATE.challenger)

    def __init__(self) -> None:
        self.log = PredictionLog(
            os.environ.get("MODELOPS_LOG_URL", SERVING.log.url),
            SERVING.log.flush_interval_s,
            SERVING.log.max_buffer,
        ).start()
        self.engine = Engine(
            SCHEMA,
            self.log,
            lambda tag: load_version(tag, SCHEMA),
            reason_codes=SERVING.reason_codes,
            batch_max_rows=SERVING.batch_max_rows,
        )
        self.watcher = StateWatcher(
            STATE_FILE,
            self.engine,
            lambda text, source: parse_state(text, source, resolve),
            SERVING.reload_interval_s,
        )
        try:
            self.watcher.check(force=True)
        except InputError as exc:  # alive but not ready until a valid state is applied
            log.error("cannot serve the desired state: %s", exc)
        self.watcher.start()
        # Models, schema and libraries live as long as the process: move them out of the
        # garbage collector's generations, so full collections under load stay short.
        gc.collect()
        gc.freeze()

    def __is_ready__(self) -> bool:
        """/readyz: every model named in the desired state is loaded."""
        return self.engine.ready()

    @bentoml.api
    async def predict(self, transaction: Transaction) -> Prediction:  # type: ignore[valid-type]
        """Score one transaction: score, decision, reasons, model version and route."""
        record = transaction.model_dump(mode="json")  # type: ignore[attr-defined]
        answers = await self._predict([record], "predict")
        return Prediction.model_validate(answers[0])

    @bentoml.api
    async def predict_batch(self, transactions: Batch) -> list[Prediction]:
        """Score up to serving.max_batch_size transactions in one request."""
        records = [t.model_dump(mode="json") for t in transactions]  # type: ignore[attr-defined]
        answers = await self._predict(records, "predict_batch")
        return [Prediction.model_validate(a) for a in answers]

    async def _predict(self, records: list[dict[str, Any]], endpoint: str) -> list[dict]:
        try:
            return await self.engine.predict(records, endpoint)
        except NotServingError as exc:
            raise ServiceUnavailable(str(exc)) from exc

    @bentoml.api
    def feedback(
        self,
        label: Literal[0, 1],
        request_id: str | None = None,
        transaction_id: str | None = None,
    ) -> FeedbackResult:
        """Attach the ground-truth label (1 = fraud) to an earlier prediction, found by
        request_id or by transaction_id (its latest answered prediction)."""
        if (request_id is None) == (transaction_id is None):
            raise BadInput("give exactly one of request_id or transaction_id")
        try:
            row = self.log.label(label=label, request_id=request_id, transaction_id=transaction_id)
        except UnknownPredictionError as exc:
            raise NotFound(str(exc)) from exc
        except DuplicateLabelError as exc:
            raise Conflict(str(exc)) from exc
        except SQLAlchemyError as exc:
            raise ServiceUnavailable("the prediction log database is unavailable") from exc
        return FeedbackResult.model_validate(row)

    @bentoml.api
    def metadata(self) -> dict[str, Any]:
        """Served versions (lineage, data hashes, metrics, thresholds), routing and
        automation, and the last refused desired state, if any."""
        return self._describe()

    def _describe(self) -> dict[str, Any]:
        served, previous = self.engine.served, self.engine.previous
        return {
            "desired_state_file": str(STATE_FILE),
            "desired_state": served.state.model_dump(mode="json") if served else None,
            "models": [m.summary() for m in served.models.values()] if served else [],
            "previous_state": previous.state.model_dump(mode="json") if previous else None,
            "last_refused": self.watcher.last_error,
            "reason_codes": SERVING.reason_codes,
            "prediction_log": {
                "backend": self.log.engine.dialect.name,
                "pending": self.log.pending,
            },
        }

    @bentoml.api(route="/admin/reload")
    def reload(self, ctx: bentoml.Context) -> dict[str, Any]:
        """Apply the desired-state file now. Needs `Authorization: Bearer $MODELOPS_ADMIN_TOKEN`;
        without that variable set on the server, nobody can call it."""
        token = os.environ.get("MODELOPS_ADMIN_TOKEN", "")
        given = ctx.request.headers.get("authorization", "")
        if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise Unauthorized("a valid admin token is required")
        try:
            self.watcher.check(force=True)
        except InputError as exc:
            raise BadInput(f"refused, still serving the previous state: {exc}") from exc
        return self._describe()

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        """Stop watching the desired state; write everything the log still buffers."""
        self.watcher.stop()
        self.log.close()


FraudScoring.add_asgi_middleware(  # type: ignore[attr-defined]  # a bentoml.Service at runtime
    RequestGuard, max_body_bytes=SERVING.max_body_bytes
)
