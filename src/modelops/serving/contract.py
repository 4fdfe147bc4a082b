"""The API's request and response models, built from params.yaml.

The record model comes from the schema (types, ranges, categories, nullability), so
adding a feature to the schema adds it to the API, and the OpenAPI spec BentoML
generates follows. The names come from ``words``: with ``record: customer``, /predict
takes ``{"customer": {...}}``, /predict_batch ``{"customers": [...]}``, and answers and
feedback name the id ``customer_id``.

Types are strict: a string is never coerced into a number, nor 2.0 into an int.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    WithJsonSchema,
    create_model,
)

from modelops.config import ConfigError, WordSettings
from modelops.schema import ColumnSpec, ColumnType, Role, Schema

OPTIONAL_ROLES = (Role.TIME, Role.IGNORE)
STRICT = ConfigDict(extra="forbid")
# Names in the OpenAPI spec besides the record model's: ours, then BentoML's own.
TAKEN_TITLES = frozenset(
    {"Reason", "Prediction", "Predictions", "Feedback", "FeedbackResult"}
    | {"InvalidArgument", "NotFound", "InternalServerError", "TaskStatusResponse"}
)


@dataclass(frozen=True)
class ApiNames:
    """What the API calls things, from params.yaml ``words`` (spaces become underscores)."""

    record: str  # the /predict envelope: {"<record>": {...}}
    records: str  # the /predict_batch envelope: {"<records>": [...]}
    id_field: str  # the record's id in answers and feedback: <record>_id
    title: str  # the record model's name in the OpenAPI spec

    @classmethod
    def from_words(cls, words: WordSettings) -> ApiNames:
        """The names for ``words``; ConfigError if one would clash with the API's own."""
        names = cls(
            record=words.record.replace(" ", "_"),
            records=words.plural.replace(" ", "_"),
            id_field=words.id_field,
            title="".join(part.capitalize() for part in words.record.split()),
        )
        if names.id_field == "request_id":
            raise ConfigError(
                f"words.record '{words.record}': its id field would be 'request_id', which "
                "the API uses for the request; choose another word"
            )
        if names.title in TAKEN_TITLES:
            raise ConfigError(
                f"words.record '{words.record}': the API already has a model named "
                f"'{names.title}'; choose another word"
            )
        return names


def _one_of(allowed: tuple[int, ...]) -> Callable[[int], int]:
    """A check that an int (never a bool: the field is strict) is one of ``allowed``."""

    def check(value: int) -> int:
        if value not in allowed:
            raise ValueError(f"Input should be one of {list(allowed)}")
        return value

    return check


def _annotation(spec: ColumnSpec, unknown_categories: str) -> Any:
    if spec.type == ColumnType.FLOAT:
        return Annotated[float, Field(strict=True, allow_inf_nan=False, ge=spec.min, le=spec.max)]
    if spec.type == ColumnType.INT:
        if spec.allowed:
            enum = WithJsonSchema({"type": "integer", "enum": list(spec.allowed)})
            return Annotated[int, Field(strict=True), AfterValidator(_one_of(spec.allowed)), enum]
        return Annotated[int, Field(strict=True, ge=spec.min, le=spec.max)]
    if spec.type == ColumnType.BOOL:
        return StrictBool
    if spec.type == ColumnType.CATEGORY and unknown_categories == "error":
        return Literal[tuple(spec.categories or ())]
    if spec.type == ColumnType.DATETIME:
        return dt.datetime
    return Annotated[str, Field(strict=True, min_length=1, max_length=128)]


def record_model(schema: Schema, title: str = "Record", noun: str = "record") -> type[BaseModel]:
    """One record as the API accepts it, named ``title``: every schema column but the
    target; id, entity and features required unless nullable; extra fields refused."""
    fields: dict[str, Any] = {}
    for name, spec in schema.columns.items():
        if spec.role == Role.TARGET:
            continue
        annotation = _annotation(spec, schema.unknown_categories)
        if spec.nullable or spec.role in OPTIONAL_ROLES:
            fields[name] = (annotation | None, Field(None, description=spec.description))
        else:
            fields[name] = (annotation, Field(description=spec.description))
    return create_model(
        title,
        __config__=ConfigDict(extra="forbid", title=title),
        __doc__=f"One {noun} to score: every column of the schema but the target.",
        **fields,
    )


class Reason(BaseModel):
    """A feature that raised the score: its value and how much it added."""

    feature: str
    value: Any
    contribution: float


@dataclass(frozen=True)
class ApiModels:
    """The API's models for one schema and one set of words."""

    names: ApiNames
    record: type[BaseModel]  # one record: the schema's columns but the target
    predict: type[BaseModel]  # /predict's body; field `record`, sent as <record>
    predict_batch: type[BaseModel]  # /predict_batch's body; field `records`, sent as <records>
    prediction: type[BaseModel]  # the answer for one record
    predictions: type[BaseModel]  # /predict_batch's answer: a list of predictions
    feedback: type[BaseModel]  # /feedback's body; field `record_id`, sent as <record>_id
    feedback_result: type[BaseModel]  # the stored label


def api_models(schema: Schema, words: WordSettings, max_batch_size: int) -> ApiModels:
    """The request and response models of the API for ``schema``, named after ``words``.
    Request fields have fixed Python names (what the service's methods receive) and take
    the words as their JSON names (aliases), so the OpenAPI spec shows the words."""
    names = ApiNames.from_words(words)
    record = record_model(schema, names.title, words.record)
    answer: dict[str, Any] = {
        "request_id": (str, ...),
        names.id_field: (str, ...),
        "score": (
            float | None,
            Field(description=f"probability of {words.positive}; null under shadow automation"),
        ),
        "decision": (Literal["approve", "review", "decline", "none"], ...),
        "automation": (Literal["shadow", "assist", "partial", "full"], ...),
        "model_version": (str, ...),
        "route": (Literal["champion", "challenger"], ...),
        "reasons": (list[Reason], ...),
    }
    stored: dict[str, Any] = {
        "request_id": (str, ...),
        names.id_field: (str, ...),
        "label": (int, ...),
        "received_at": (dt.datetime, ...),
    }
    prediction = create_model("Prediction", __doc__=f"The answer for one {words.record}.", **answer)
    return ApiModels(
        names=names,
        record=record,
        predict=create_model(
            "PredictRequest",
            __config__=STRICT,
            __doc__=f"One {words.record}.",
            record=(record, Field(alias=names.record)),
        ),
        predict_batch=create_model(
            "PredictBatchRequest",
            __config__=STRICT,
            __doc__=f"Up to {max_batch_size} {words.plural}.",
            records=(
                list[record],  # type: ignore[valid-type]
                Field(alias=names.records, min_length=1, max_length=max_batch_size),
            ),
        ),
        prediction=prediction,
        predictions=create_model(
            "Predictions",
            __base__=RootModel,
            root=(list[prediction], ...),
        ),
        feedback=create_model(
            "Feedback",
            __config__=STRICT,
            __doc__=f"The true label (1 = {words.positive}) of an earlier prediction.",
            label=(Literal[0, 1], ...),
            request_id=(
                str | None,
                Field(None, description=f"the prediction's request id; or {names.id_field}"),
            ),
            record_id=(
                str | None,
                Field(
                    None,
                    alias=names.id_field,
                    description=f"the {words.record}'s id: its latest answered prediction",
                ),
            ),
        ),
        feedback_result=create_model("FeedbackResult", __doc__="The stored label.", **stored),
    )


def requests_from_frame(frame: pd.DataFrame, schema: Schema) -> list[dict[str, Any]]:
    """Rows of a data file as API records (JSON-ready; the target dropped). Floats are
    the frame's own values: pandas' JSON writer keeps only 10 significant digits."""
    columns = [c for c in schema.columns if c != schema.target and c in frame.columns]
    records = json.loads(frame[columns].to_json(orient="records", date_format="iso"))
    floats = {
        name: frame[name].to_numpy(dtype=float)
        for name in columns
        if schema.columns[name].type == ColumnType.FLOAT
    }
    for i, record in enumerate(records):
        for name in columns:
            spec = schema.columns[name]
            if record[name] is None:
                continue
            if spec.type == ColumnType.INT:
                record[name] = int(record[name])
            elif spec.type == ColumnType.FLOAT:
                record[name] = float(floats[name][i])
    return list(records)
