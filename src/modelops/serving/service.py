"""The BentoML service: `make serve` runs it, `make bento` packages it.

At import it reads params.yaml (MODELOPS_PARAMS) and the desired-state file
(MODELOPS_DESIRED_STATE, default serving.desired_state); the models that file names are
declared as class attributes, so `bentoml build` packages them, with those of
MODELOPS_BUNDLE (space-separated tags: `make image` packs every version the image
carries, so a desired state can switch between them in the same pods). The service is named
`<model.name>-service`; its request and response models come from the schema and their
names from `words` (contract.py), so they are passed to BentoML as input and output
specs rather than read from the method signatures. Everything else (routing, batching,
decisions, the prediction log) lives in engine.py and is tested without BentoML; every
request first passes the edge (edge.py), which also serves /metrics.
"""

from __future__ import annotations

import gc
import logging
import os
from http import HTTPStatus
from pathlib import Path
from typing import Any

import bentoml
from bentoml._internal.service.openapi.specification import OpenAPISpecification
from bentoml._internal.utils.cattr import bentoml_cattr
from bentoml.exceptions import BadInput, BentoMLException, NotFound, ServiceUnavailable
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from modelops.config import load_settings
from modelops.errors import InputError
from modelops.serving.bento import bento_name, description
from modelops.serving.contract import api_models
from modelops.serving.edge import SERVER_ERROR, Edge, Endpoint, QuietClientErrors
from modelops.serving.engine import Engine, NotServingError, ScoringError, StateWatcher
from modelops.serving.openapi import truthful
from modelops.serving.predlog import DuplicateLabelError, PredictionLog, UnknownPredictionError
from modelops.serving.state import load_state, parse_state
from modelops.serving.store import load_version, resolve

log = logging.getLogger("modelops.serving")

SETTINGS = load_settings(os.environ.get("MODELOPS_PARAMS", "params.yaml"))
SCHEMA = SETTINGS.data_schema
SERVING = SETTINGS.serving
STATE_FILE = Path(os.environ.get("MODELOPS_DESIRED_STATE", str(SERVING.desired_state)))
BOOT_STATE = load_state(STATE_FILE, resolve)
API = api_models(SCHEMA, SETTINGS.words, SERVING.max_batch_size)
ID_FIELD = API.names.id_field
ENDPOINTS = (
    Endpoint("/predict"),
    Endpoint("/predict_batch"),
    Endpoint("/feedback"),
    Endpoint("/metadata", body=False),
    Endpoint("/admin/reload", body=False, admin_token_env="MODELOPS_ADMIN_TOKEN"),
)


class Conflict(BentoMLException):
    """409: the request conflicts with what is stored."""

    error_code = HTTPStatus.CONFLICT


class Unprocessable(BentoMLException):
    """422: a valid record the model could not score."""

    error_code = HTTPStatus.UNPROCESSABLE_ENTITY


def server_error(ctx: bentoml.Context, error: type[BentoMLException], message: str) -> Exception:
    """A 5xx whose message reaches the client (BentoML would hide it): the edge reads it."""
    ctx.request.scope[SERVER_ERROR] = message
    return error(message)


class DescribedService(bentoml.Service):  # type: ignore[misc]  # untyped for mypy
    """A BentoML service whose OpenAPI description is its own, also when it is served
    from source (BentoML would show its default README there)."""

    @property
    def doc(self) -> str:
        """The description given to the decorator."""
        return str(self.description or super().doc)

    @property
    def openapi_spec(self) -> OpenAPISpecification:
        """BentoML's spec with every status each endpoint really answers (openapi.py)."""
        spec = truthful(super().openapi_spec.asdict(), ENDPOINTS)
        return bentoml_cattr.structure(spec, OpenAPISpecification)


class Bundle:
    """The other versions an image carries (`make image`): BentoML packs every BentoModel
    class attribute, inherited ones too."""


for n, tag in enumerate(os.environ.get("MODELOPS_BUNDLE", "").split()):
    if tag not in BOOT_STATE.versions:
        setattr(Bundle, f"bundled_{n}", bentoml.models.BentoModel(tag))


@bentoml.service(
    name=bento_name(SETTINGS.model),
    description=description(SETTINGS.words),
    service_class=DescribedService,
    workers=SERVING.workers,
    traffic={"timeout": 30},
    # BentoML's request metrics label the raw path (any client can add series): the edge
    # counts requests instead, with fixed labels, and serves /metrics itself
    metrics={"enabled": False},
    logging={"access": {"enabled": SERVING.access_log}},
    # BentoML traces every request with OpenTelemetry; off by default for the hot paths
    tracing={} if SERVING.tracing else {"excluded_urls": ["/predict", "/feedback"]},
    envs=[{"name": "OMP_NUM_THREADS", "value": "1"}],
)
class ModelService(Bundle):
    """Scores records: champion/challenger routing, automation degrees, a prediction log."""

    champion_model = bentoml.models.BentoModel(BOOT_STATE.champion)
    if BOOT_STATE.challenger:
        challenger_model = bentoml.models.BentoModel(BOOT_STATE.challenger)

    def __init__(self) -> None:
        self.log = PredictionLog.from_settings(
            SERVING.log, id_name=ID_FIELD, entity_field=SCHEMA.entity_column
        ).start()
        self.engine = Engine(
            SCHEMA,
            self.log,
            lambda tag: load_version(tag, SCHEMA),
            reason_codes=SERVING.reason_codes,
            batch_max_rows=SERVING.batch_max_rows,
            id_field=ID_FIELD,
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
        logging.getLogger("bentoml._internal.server.http_app").addFilter(QuietClientErrors())

    def __is_ready__(self) -> bool:
        """/readyz: every model named in the desired state is loaded."""
        return self.engine.ready()

    @bentoml.api(input_spec=API.predict, output_spec=API.prediction)
    async def predict(self, record: BaseModel, ctx: bentoml.Context) -> BaseModel:
        """Score one record: score, decision, reasons, model version and route."""
        answers = await self._predict([record.model_dump(mode="json")], "predict", ctx)
        return API.prediction.model_validate(answers[0])

    @bentoml.api(input_spec=API.predict_batch, output_spec=API.predictions)
    async def predict_batch(self, records: list[BaseModel], ctx: bentoml.Context) -> BaseModel:
        """Score up to serving.max_batch_size records in one request, in order."""
        rows = [r.model_dump(mode="json") for r in records]
        return API.predictions.model_validate(await self._predict(rows, "predict_batch", ctx))

    async def _predict(
        self, records: list[dict[str, Any]], endpoint: str, ctx: bentoml.Context
    ) -> list[dict]:
        try:
            return await self.engine.predict(records, endpoint)
        except NotServingError as exc:
            raise server_error(ctx, ServiceUnavailable, str(exc)) from exc
        except ScoringError as exc:
            if exc.by_input:
                raise Unprocessable(f"{exc}; nothing was logged") from exc
            raise server_error(ctx, BentoMLException, f"{exc}; nothing was logged") from exc

    @bentoml.api(input_spec=API.feedback, output_spec=API.feedback_result)
    def feedback(
        self,
        ctx: bentoml.Context,
        label: int,
        request_id: str | None = None,
        record_id: str | None = None,
    ) -> BaseModel:
        """Attach the ground-truth label (1 = positive class) to an earlier prediction,
        found by request_id or by the record's id (its latest answered prediction)."""
        try:
            row = self.log.label(label=label, request_id=request_id, record_id=record_id)
        except UnknownPredictionError as exc:
            raise NotFound(str(exc)) from exc
        except DuplicateLabelError as exc:
            raise Conflict(str(exc)) from exc
        except SQLAlchemyError as exc:
            message = "the prediction log database is unavailable"
            raise server_error(ctx, ServiceUnavailable, message) from exc
        row[ID_FIELD] = row.pop("record_id")
        return API.feedback_result.model_validate(row)

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
    def reload(self) -> dict[str, Any]:
        """Apply the desired-state file now. Needs `Authorization: Bearer $MODELOPS_ADMIN_TOKEN`
        (the edge checks it before reading the body); without that variable set on the
        server, nobody can call it."""
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


ModelService.add_asgi_middleware(  # type: ignore[attr-defined]  # a bentoml.Service at runtime
    Edge, endpoints=ENDPOINTS, max_body_bytes=SERVING.max_body_bytes, fields=SCHEMA.columns
)
