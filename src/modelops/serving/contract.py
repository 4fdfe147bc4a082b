"""The API's request and response models. The transaction model is derived from the
schema in params.yaml (types, ranges, categories, nullability), so adding a feature to
the schema adds it to the API, and the OpenAPI spec BentoML generates follows.

Types are strict: a string is never coerced into a number, nor 2.0 into an int.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StrictBool, create_model

from modelops.schema import ColumnSpec, ColumnType, Role, Schema

OPTIONAL_ROLES = (Role.TIME, Role.IGNORE)


def _annotation(spec: ColumnSpec, unknown_categories: str) -> Any:
    if spec.type == ColumnType.FLOAT:
        return Annotated[float, Field(strict=True, allow_inf_nan=False, ge=spec.min, le=spec.max)]
    if spec.type == ColumnType.INT:
        if spec.allowed:
            return Literal[spec.allowed]
        return Annotated[int, Field(strict=True, ge=spec.min, le=spec.max)]
    if spec.type == ColumnType.BOOL:
        return StrictBool
    if spec.type == ColumnType.CATEGORY and unknown_categories == "error":
        return Literal[tuple(spec.categories or ())]
    if spec.type == ColumnType.DATETIME:
        return dt.datetime
    return Annotated[str, Field(strict=True, min_length=1, max_length=128)]


def transaction_model(schema: Schema) -> type[BaseModel]:
    """One transaction as the API accepts it: every schema column but the target;
    id, entity and features required unless nullable; extra fields refused."""
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
        "Transaction", __config__=ConfigDict(extra="forbid", title="Transaction"), **fields
    )


class Reason(BaseModel):
    """A feature that raised the score: its value and how much it added."""

    feature: str
    value: Any
    contribution: float


class Prediction(BaseModel):
    """The answer for one transaction."""

    request_id: str
    transaction_id: str
    score: float | None = Field(description="fraud probability; null under shadow automation")
    decision: Literal["approve", "review", "decline", "none"]
    automation: Literal["shadow", "assist", "partial", "full"]
    model_version: str
    route: Literal["champion", "challenger"]
    reasons: list[Reason]


class FeedbackResult(BaseModel):
    """The stored label."""

    request_id: str
    transaction_id: str
    label: int
    received_at: dt.datetime


def requests_from_frame(frame: pd.DataFrame, schema: Schema) -> list[dict[str, Any]]:
    """Rows of a data file as API transactions (JSON-ready; the target dropped)."""
    columns = [c for c in schema.columns if c != schema.target and c in frame.columns]
    records = json.loads(frame[columns].to_json(orient="records", date_format="iso"))
    for record in records:
        for name in columns:
            spec = schema.columns[name]
            if spec.type == ColumnType.INT and record[name] is not None:
                record[name] = int(record[name])
            elif spec.type == ColumnType.FLOAT and isinstance(record[name], int):
                record[name] = float(record[name])
    return list(records)
