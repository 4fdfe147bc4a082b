"""The API's request and response models, built from params.yaml.

The record model comes from the schema (types, ranges, categories, nullability), so
adding a feature to the schema adds it to the API, and the OpenAPI spec BentoML
generates follows. The names come from ``words``: with ``record: customer``, /predict
takes ``{"customer": {...}}``, /predict_batch ``{"customers": [...]}``, and answers and
feedback name the id ``customer_id``.

Types are strict: a string is never coerced into a number, nor 2.0 into an int, nor a
number into a timestamp. Every number has finite bounds (the schema's, else DEFAULT_BOUNDS)
and every string a length limit and character rules (TEXT_RULE), checked before anything
is scored or stored.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    WithJsonSchema,
    create_model,
    model_validator,
)

from modelops.config import ConfigError, WordSettings
from modelops.schema import ColumnSpec, ColumnType, Role, Schema

OPTIONAL_ROLES = (Role.TIME, Role.IGNORE)
# Bounds of numbers the schema leaves open: integers that a float64 holds exactly, and
# floats inside float32's range, so no model library overflows converting them.
DEFAULT_BOUNDS = {ColumnType.INT: 2**53 - 1, ColumnType.FLOAT: 3.4e38}
MAX_TEXT = 128  # characters in any string field, ids included
# What no database can store or no log line should hold: control characters (C0, DEL, C1).
# Lone surrogates are refused too (JSON parsing already fails on them).
TEXT_RULE = r"^[^\u0000-\u001f\u007f-\u009f]*$"
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# A date and a time, ISO 8601 (the offset optional); pydantic then checks the values.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?"
)
STRICT = ConfigDict(extra="forbid")
# Names in the OpenAPI spec besides the record model's: ours, then BentoML's own.
TAKEN_TITLES = frozenset(
    {"Reason", "Prediction", "Predictions", "Feedback", "FeedbackResult", "Problem", "FieldError"}
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


def one_of(allowed: tuple[int, ...]) -> Any:
    """A strict int that must be one of ``allowed`` (never a bool or 1.0)."""
    enum = WithJsonSchema({"type": "integer", "enum": list(allowed)})
    return Annotated[int, Field(strict=True), AfterValidator(_one_of(allowed)), enum]


def _storable(value: str) -> str:
    bad = _FORBIDDEN.search(value)
    if bad:
        raise ValueError(
            f"must not contain control characters or lone surrogates: U+{ord(bad.group()):04X} "
            f"at position {bad.start()}"
        )
    return value


# Any string the API takes: ids, categories, free text.
Text = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=MAX_TEXT, json_schema_extra={"pattern": TEXT_RULE}),
    AfterValidator(_storable),
]


def _timestamp_text(value: Any) -> Any:
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise ValueError("should be an ISO 8601 date-time string, e.g. 2025-05-01T03:12:00")
    return value


# A date and time written as ISO 8601 text; never a number, never a date alone.
Timestamp = Annotated[
    dt.datetime,
    BeforeValidator(_timestamp_text),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def _bounds(spec: ColumnSpec) -> tuple[float, float]:
    default = DEFAULT_BOUNDS[spec.type]
    low = -default if spec.min is None else spec.min
    high = default if spec.max is None else spec.max
    return (int(low), int(high)) if spec.type == ColumnType.INT else (low, high)


def _annotation(spec: ColumnSpec, unknown_categories: str) -> Any:
    if spec.type == ColumnType.FLOAT:
        low, high = _bounds(spec)
        return Annotated[float, Field(strict=True, allow_inf_nan=False, ge=low, le=high)]
    if spec.type == ColumnType.INT:
        if spec.allowed:
            return one_of(spec.allowed)
        low, high = _bounds(spec)
        return Annotated[int, Field(strict=True, ge=low, le=high)]
    if spec.type == ColumnType.BOOL:
        return StrictBool
    if spec.type == ColumnType.CATEGORY and unknown_categories == "error":
        return Literal[tuple(spec.categories or ())]
    if spec.type == ColumnType.DATETIME:
        return Timestamp
    return Text


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
            __config__=ConfigDict(
                extra="forbid",
                json_schema_extra={
                    "oneOf": [{"required": ["request_id"]}, {"required": [names.id_field]}]
                },
            ),
            __doc__=f"The true label (1 = {words.positive}) of an earlier prediction: give "
            f"exactly one of request_id and {names.id_field}.",
            __validators__={"exactly_one": model_validator(mode="after")(_exactly_one_id)},  # type: ignore[dict-item]
            label=(one_of((0, 1)), ...),
            # never null: a field left out is None (pydantic does not validate defaults)
            request_id=(Text, Field(None, description="the prediction's request id")),
            record_id=(
                Text,
                Field(
                    None,
                    alias=names.id_field,
                    description=f"the {words.record}'s id: its latest answered prediction",
                ),
            ),
        ),
        feedback_result=create_model("FeedbackResult", __doc__="The stored label.", **stored),
    )


def _exactly_one_id(feedback: Any) -> Any:
    if (feedback.request_id is None) == (feedback.record_id is None):
        alias = type(feedback).model_fields["record_id"].alias
        raise ValueError(f"give exactly one of request_id and {alias}")
    return feedback


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
