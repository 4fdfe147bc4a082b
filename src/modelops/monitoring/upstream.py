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
The service refuses contract breaks with 422 before anything is logged (contract.py),
so a log behind the service holds only ``reference`` issues, and the refusals show
only as a count per endpoint on /metrics (``rejected_requests``), not per field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from modelops.monitoring.counts import Window, json_kind
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


def _scan_columns(name: str, spec: ColumnSpec, profile: Profile, kind: Any, value: Any) -> dict:
    """The aggregates of one field: absent, nulls, rows per JSON kind, and for numbers
    the rows outside the schema's and the reference's range and the extremes."""
    columns = {
        f"{name}|absent": _count(kind.is_(None)),
        f"{name}|null": _count(kind == "null"),
        **{f"{name}|{k}": _count(kind == k) for k in KINDS},
    }
    if value is not None:
        reference = profile.features.get(name)
        bounds = {
            "schema_low": spec.min,
            "schema_high": spec.max,
            "ref_low": reference.min if reference else None,
            "ref_high": reference.max if reference else None,
        }
        for key, bound in bounds.items():
            if bound is not None:
                beyond = value < bound if key.endswith("low") else value > bound
                columns[f"{name}|{key}"] = _count(beyond)
        columns[f"{name}|min"] = sa.func.min(value)
        columns[f"{name}|max"] = sa.func.max(value)
    return columns


def _scan(
    connection: sa.Connection, schema: Schema, profile: Profile, window: Window
) -> dict[str, Any]:
    """One pass over the window: per field, kinds, nulls and numeric ranges."""
    dialect = connection.dialect.name
    fields = logged_fields(schema)
    inner_columns = []
    for name, spec in fields.items():
        kind = json_kind(name, dialect)
        inner_columns.append(kind.label(f"k{len(inner_columns)}"))
        if spec.type in (ColumnType.INT, ColumnType.FLOAT):
            value = sa.case((kind == "number", PREDICTIONS.c.inputs[name].as_float()))
            inner_columns.append(value.label(f"v{len(inner_columns)}"))
    inner = sa.select(*inner_columns).where(window.where()).offset(0).subquery()
    aggregates, position = {"rows": sa.func.count()}, 0
    for name, spec in fields.items():
        kind = inner.c[f"k{position}"]
        position += 1
        value = None
        if spec.type in (ColumnType.INT, ColumnType.FLOAT):
            value = inner.c[f"v{position}"]
            position += 1
        aggregates |= _scan_columns(name, spec, profile, kind, value)
    query = sa.select(*(column.label(key) for key, column in aggregates.items()))
    return dict(connection.execute(query).one()._mapping)


def _unexpected_levels(
    connection: sa.Connection, name: str, known: list[str], window: Window
) -> list[tuple[str, int]]:
    """Text values of a categorical field outside ``known``, most frequent first."""
    kind = json_kind(name, connection.dialect.name)
    value = PREDICTIONS.c.inputs[name].as_string().label("value")
    query = (
        sa.select(value, sa.func.count().label("n"))
        .where(window.where() & (kind == "string") & value.not_in(known))
        .group_by(value)
        .order_by(sa.desc("n"), value)
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


def rejected_requests(metrics_text: str) -> dict[tuple[str, str], float]:
    """Requests the service refused as the client's fault (4xx), by endpoint and status,
    from its /metrics text. Counters since the service started: take the difference of
    two scrapes for a window. Rejections are not broken down by field."""
    rejected: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "modelops_http_requests":
            continue
        for sample in family.samples:
            status = sample.labels.get("status", "")
            if sample.name.endswith("_total") and status.startswith("4"):
                rejected[sample.labels["endpoint"], status] = sample.value
    return rejected
