"""Upstream and schema changes in the logged inputs, counted and named.

Drift asks whether distributions moved; this asks whether the producer changed what it
sends. From the prediction log's JSON inputs, in the database (one scan for types,
nulls and ranges, one GROUP BY per categorical field and one for the field names):

- ``missing_field``, ``extra_field``: a required field absent, a field the schema lacks;
- ``type_change``: a value of another JSON type (a number sent as text, ...);
- ``null``: nulls where the schema forbids them, or where the reference had none;
- ``new_category``: a level outside the schema, or one the reference never saw;
- ``out_of_range``: numbers outside the schema's min/max, or the reference's range
  (a unit change: amounts in cents, distances in metres).

Severity ``schema`` breaks the contract; ``reference`` keeps it but is new to the model.
The service refuses contract breaks with 400 before anything is logged (contract.py),
so a log behind the service holds only ``reference`` issues; the refusals show on its
/metrics (``service_refusals``): requests per endpoint and status, and the fields at
fault per schema column (``modelops_refused_fields_total``), counted since it started.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from modelops.errors import InputError
from modelops.monitoring.counts import (
    Window,
    json_is_text,
    json_number,
    json_text,
    json_value,
)
from modelops.monitoring.profile import Profile
from modelops.schema import ColumnSpec, ColumnType, Role, Schema
from modelops.serving.predlog import PREDICTIONS

Severity = Literal["schema", "reference"]
KINDS = ("number", "string", "boolean", "object", "array")
EXPECTED_KIND = {
    ColumnType.INT: "number",
    ColumnType.FLOAT: "number",
    ColumnType.BOOL: "boolean",
    ColumnType.CATEGORY: "string",
    ColumnType.STRING: "string",
    ColumnType.DATETIME: "string",
}
TOP_VALUES = 5  # new categories named per field
OPTIONAL_ROLES = (Role.TIME, Role.IGNORE)  # may be left out of a request
NUMBER_TYPES = (ColumnType.INT, ColumnType.FLOAT)


@dataclass(frozen=True)
class UpstreamIssue:
    """One kind of change in one field: how many rows show it, and what was seen."""

    field: str
    issue: str  # missing_field | extra_field | type_change | null | new_category | out_of_range
    severity: Severity
    rows: int
    share: float  # of the window's rows
    detail: str


@dataclass(frozen=True)
class UpstreamResult:
    """A window's upstream changes."""

    rows: int
    issues: tuple[UpstreamIssue, ...]


def logged_fields(schema: Schema) -> dict[str, ColumnSpec]:
    """The fields a logged record holds: every schema column but the target."""
    return {n: s for n, s in schema.columns.items() if s.role != Role.TARGET}


def _required(spec: ColumnSpec) -> bool:
    return not spec.nullable and spec.role not in OPTIONAL_ROLES


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


# The JSON type names each database reports, and what they mean here.
JSON_TYPES = {
    "sqlite": {
        "integer": "number",
        "real": "number",
        "text": "string",
        "true": "boolean",
        "false": "boolean",
        "null": "null",
        "object": "object",
        "array": "array",
    },
    "postgresql": {k: k for k in ("number", "string", "boolean", "null", "object", "array")},
}


def _json_type(field: str, dialect: str) -> sa.ColumnElement[Any]:
    """Extracted once per row: SQLite's JSON type name of ``inputs[field]`` (NULL when
    missing), or PostgreSQL's JSON fragment (typed by ``json_typeof`` after)."""
    if dialect == "postgresql":
        return PREDICTIONS.c.inputs[field]
    return sa.func.json_type(PREDICTIONS.c.inputs, f'$."{field}"')


def _type_name(extracted: Any, dialect: str) -> sa.ColumnElement[Any]:
    return sa.func.json_typeof(extracted) if dialect == "postgresql" else extracted


def _scan_columns(
    name: str, spec: ColumnSpec, profile: Profile, type_name: Any, number: Any, dialect: str
) -> dict[str, Any]:
    """The aggregates of one field: rows per JSON type (absent: none), and for numbers
    the rows outside the schema's and the reference's range and the extremes."""
    columns = {f"{name}|absent": _count(type_name.is_(None))}
    columns |= {f"{name}|{t}": _count(type_name == t) for t in JSON_TYPES[dialect]}
    if number is not None:
        reference = profile.features.get(name)
        bounds = {
            "schema_low": spec.min,
            "schema_high": spec.max,
            "ref_low": reference.min if reference else None,
            "ref_high": reference.max if reference else None,
        }
        for key, bound in bounds.items():
            if bound is not None:
                beyond = number < bound if key.endswith("low") else number > bound
                columns[f"{name}|{key}"] = _count(beyond)
        columns[f"{name}|min"] = sa.func.min(number)
        columns[f"{name}|max"] = sa.func.max(number)
    return columns


def _scan(
    connection: sa.Connection, schema: Schema, profile: Profile, window: Window
) -> dict[str, Any]:
    """One pass over the window: per field, its JSON types and numeric ranges. Each
    field's type (and a number's value) is extracted once per row in a subquery that
    ``OFFSET 0`` keeps the database from inlining into the aggregates."""
    dialect = connection.dialect.name
    fields = logged_fields(schema)
    numeric = {n for n, spec in fields.items() if spec.type in NUMBER_TYPES}
    extracted = [_json_type(name, dialect).label(f"t{i}") for i, name in enumerate(fields)]
    extracted += [
        json_value(name, dialect).label(f"v{i}")
        for i, name in enumerate(fields)
        if name in numeric and dialect != "postgresql"  # there, the fragment holds it
    ]
    inner = sa.select(*extracted).where(window.where()).offset(0).subquery()
    aggregates: dict[str, Any] = {"rows": sa.func.count()}
    for i, (name, spec) in enumerate(fields.items()):
        type_name = _type_name(inner.c[f"t{i}"], dialect)
        number = None
        if name in numeric:
            value = inner.c[f"t{i}"] if dialect == "postgresql" else inner.c[f"v{i}"]
            is_number = type_name.in_([t for t, k in JSON_TYPES[dialect].items() if k == "number"])
            number = sa.case((is_number, json_number(value, dialect)))
        aggregates |= _scan_columns(name, spec, profile, type_name, number, dialect)
    query = sa.select(*(column.label(key) for key, column in aggregates.items()))
    found = dict(connection.execute(query).one()._mapping)
    for name in fields:  # the database's type names -> ours
        for raw, kind in JSON_TYPES[dialect].items():
            count = found.pop(f"{name}|{raw}") or 0
            found[f"{name}|{kind}"] = found.get(f"{name}|{kind}", 0) + count
    return found


def _unexpected_levels(
    connection: sa.Connection, name: str, known: list[str], window: Window
) -> list[tuple[str, int]]:
    """Text values of a categorical field outside ``known``, most frequent first."""
    dialect = connection.dialect.name
    inner = (
        sa.select(json_value(name, dialect).label("value"))
        .where(window.where())
        .offset(0)
        .subquery()
    )
    text = json_text(inner.c.value, dialect).label("text")
    query = (
        sa.select(text, sa.func.count().label("n"))
        .where(json_is_text(inner.c.value, dialect) & text.not_in(known))
        .group_by(sa.literal_column("text"))
        .order_by(sa.desc("n"), sa.literal_column("text"))
    )
    return [(str(v), int(n)) for v, n in connection.execute(query)]


def _field_names(connection: sa.Connection, window: Window) -> list[tuple[str, int]]:
    """Every field name of the window's inputs and the rows that hold it."""
    if connection.dialect.name == "postgresql":
        key = sa.func.json_object_keys(PREDICTIONS.c.inputs).label("key")
        keys = sa.select(key).where(window.where()).subquery()
        query = sa.select(keys.c.key, sa.func.count()).group_by(keys.c.key)
    else:
        each = sa.func.json_each(PREDICTIONS.c.inputs).table_valued("key")
        query = (
            sa.select(each.c.key, sa.func.count())
            .select_from(PREDICTIONS)
            .join(each, sa.true())
            .where(window.where())
            .group_by(each.c.key)
        )
    return [(str(k), int(n)) for k, n in connection.execute(query)]


def _listed(pairs: list[tuple[str, int]]) -> str:
    shown = ", ".join(f"{v!r} ({n:,})" for v, n in pairs[:TOP_VALUES])
    return shown + (f" and {len(pairs) - TOP_VALUES} more" if len(pairs) > TOP_VALUES else "")


def _field_issues(
    name: str, spec: ColumnSpec, profile: Profile, scan: dict[str, Any]
) -> list[tuple[str, Severity, int, str]]:
    """(issue, severity, rows, detail) of one field from the scan."""
    found: list[tuple[str, Severity, int, str]] = []
    absent, nulls = scan[f"{name}|absent"] or 0, scan[f"{name}|null"] or 0
    if absent and _required(spec):
        found.append(("missing_field", "schema", absent, "a required field is absent"))
    nulls += 0 if _required(spec) else absent  # an optional field left out is a null
    reference = profile.features.get(name)
    if nulls and _required(spec):
        found.append(("null", "schema", nulls, "the schema does not allow nulls here"))
    elif nulls and reference is not None and reference.nulls == 0:
        found.append(("null", "reference", nulls, "the reference had no nulls"))
    expected = EXPECTED_KIND[spec.type]
    wrong = {k: scan[f"{name}|{k}"] or 0 for k in KINDS if k != expected}
    if sum(wrong.values()):
        seen = ", ".join(f"{k} ({n:,})" for k, n in wrong.items() if n)
        found.append(("type_change", "schema", sum(wrong.values()), f"{expected} expected: {seen}"))
    if f"{name}|min" in scan:
        low, high = scan[f"{name}|min"], scan[f"{name}|max"]
        seen = f"seen {low:.6g} to {high:.6g}" if low is not None else ""
        outside = (scan.get(f"{name}|schema_low") or 0) + (scan.get(f"{name}|schema_high") or 0)
        if outside:
            found.append(
                ("out_of_range", "schema", outside, f"schema [{spec.min}, {spec.max}]; {seen}")
            )
        beyond = (scan.get(f"{name}|ref_low") or 0) + (scan.get(f"{name}|ref_high") or 0)
        if beyond > outside and reference is not None:
            span = f"reference [{reference.min:.6g}, {reference.max:.6g}]; {seen}"
            found.append(("out_of_range", "reference", beyond - outside, span))
    return found


def log_upstream(
    engine: sa.Engine, schema: Schema, profile: Profile, window: Window
) -> UpstreamResult:
    """The upstream changes in the inputs logged in ``window``."""
    fields = logged_fields(schema)
    issues: list[tuple[str, str, Severity, int, str]] = []
    with engine.connect() as connection:
        scan = _scan(connection, schema, profile, window)
        rows = int(scan["rows"])
        for name, spec in fields.items():
            issues += [(name, *i) for i in _field_issues(name, spec, profile, scan)]
        for name, reference in profile.features.items():
            if reference.kind != "categorical" or fields[name].type == ColumnType.BOOL:
                continue
            seen = [lvl for lvl, n in zip(reference.levels, reference.counts, strict=False) if n]
            found = _unexpected_levels(connection, name, seen, window)
            outside = [(v, n) for v, n in found if v not in reference.levels]
            unseen = [(v, n) for v, n in found if v in reference.levels]
            if outside:
                detail = f"not in the schema: {_listed(outside)}"
                issues.append((name, "new_category", "schema", sum(n for _, n in outside), detail))
            if unseen:
                detail = f"not in the reference: {_listed(unseen)}"
                issues.append(
                    (name, "new_category", "reference", sum(n for _, n in unseen), detail)
                )
        for key, n in _field_names(connection, window):
            if key not in fields:
                issues.append((key, "extra_field", "schema", n, "not in the schema"))
    return UpstreamResult(
        rows,
        tuple(
            UpstreamIssue(field, issue, severity, n, n / max(rows, 1), detail)
            for field, issue, severity, n, detail in issues
        ),
    )


@dataclass(frozen=True)
class Refusals:
    """What the service refused since it started, from its /metrics."""

    requests: dict[tuple[str, str], float]  # (endpoint, 4xx status): requests
    fields: dict[str, float]  # schema column (or "other"): times at fault


def service_refusals(url: str, timeout: float = 5.0) -> Refusals:
    """The refusals counted by the service whose /metrics is at ``url``: http or https
    only, no redirect followed (a redirect is an error)."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise InputError(f"the metrics URL is {scheme or 'schemeless'}, not http(s)")
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    with opener.open(url, timeout=timeout) as answer:
        text = answer.read().decode("utf-8", "replace")
    return Refusals(rejected_requests(text), refused_fields(text))


def refused_fields(metrics_text: str) -> dict[str, float]:
    """The fields at fault in refused records, by schema column, from /metrics text."""
    return {
        sample.labels.get("field", "other"): sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "modelops_refused_fields"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def rejected_requests(metrics_text: str) -> dict[tuple[str, str], float]:
    """Requests the service refused as the client's fault (4xx), by endpoint and status,
    from its /metrics text. Counters since the service started: take the difference of
    two scrapes for a window."""
    rejected: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "modelops_http_requests":
            continue
        for sample in family.samples:
            status = sample.labels.get("status", "")
            if sample.name.endswith("_total") and status.startswith("4"):
                rejected[sample.labels["endpoint"], status] = sample.value
    return rejected
