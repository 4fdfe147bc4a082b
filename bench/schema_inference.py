"""Schema inference for ``make adopt``: ours (``modelops.data.infer``) against pandera's
``pandera.pandas.infer_schema``, on three tables the project has never seen.

Each table is written to CSV and read back with ``modelops.data.sources.read_files``,
as adoption reads it (cells as written, ``keep_default_na=False``):

- awkward: ``awkward()`` of tests/integration/datasets.py, churn-like (target Churn
  Yes/No, TotalCharges numbers as text with blanks, Yes/No categories, 60 states, an id);
- breast-cancer: ``breast_cancer()`` of the same module (scikit-learn's data, target
  diagnosis malignant/benign);
- awkward-markers: awkward with "?" in 3 % of MonthlyCharges and "NA" in 1 % of tenure
  and of Contract.

Per column: the logical type inferred, numbers recognised despite missing markers,
categories listed, markers found, range, role, and whether a model can use the column as
typed. Per table: does the schema, used as is, accept the data it came from (ours:
``prepare`` then ``validate``; pandera: ``schema.validate``), accept held-out rows (inferred
on a random half, checked on the other), catch one planted bad value per feature; time to
infer (median of 5 runs). Also pandera on pandas' default ``read_csv``, for fairness.

    .venv/bin/python bench/schema_inference.py  # a few seconds; writes
    #   bench/results/schema_inference.md and .json
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from modelops.data.infer import MARGIN, infer
from modelops.data.prepare import prepare
from modelops.data.sources import read_files
from modelops.data.validation import DataValidationError, validate
from modelops.schema import Schema

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
FEATURES = ("number", "category")
LOGICAL = {"int": "number", "float": "number", "string": "text"}  # else the type's own name


@dataclass
class Case:
    """A table as adoption reads it, as pandas reads it by default, and what it truly holds."""

    name: str
    frame: pd.DataFrame
    default_frame: pd.DataFrame
    truth: dict[str, str]  # number / category (features), id / target (roles)
    markers: dict[str, list[str]]  # missing-value markers planted per column
    target: str
    positive: str | None


def cases(folder: Path) -> list[Case]:
    sys.path.insert(0, str(REPO))
    datasets = importlib.import_module("tests.integration.datasets")  # not type-checked here
    churn: pd.DataFrame = datasets.awkward()
    marked = churn.astype({"MonthlyCharges": object, "tenure": object})
    rng = np.random.default_rng(7)
    for column, marker, share in (("MonthlyCharges", "?", 0.03), ("tenure", "NA", 0.01)):
        marked.loc[rng.random(len(marked)) < share, column] = marker
    marked.loc[rng.random(len(marked)) < 0.01, "Contract"] = "NA"
    kinds = ["id", "number", "category", "number", *["category"] * 3, "number", "number"]
    churn_truth = dict(zip(churn.columns, [*kinds, "target"], strict=True))
    cancer: pd.DataFrame = datasets.breast_cancer()
    cancer_truth = {c: "target" if c == "diagnosis" else "number" for c in cancer.columns}
    blank = {"TotalCharges": [" "]}
    tables = [
        ("awkward", churn, churn_truth, blank, "Churn", None),
        ("breast-cancer", cancer, cancer_truth, {}, "diagnosis", "malignant"),
        ("awkward-markers", marked, churn_truth,
         {**blank, "MonthlyCharges": ["?"], "tenure": ["NA"], "Contract": ["NA"]}, "Churn", None),
    ]  # fmt: skip
    found = []
    for name, frame, truth, markers, target, positive in tables:
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        found.append(
            Case(name, read_files(path), pd.read_csv(path), truth, markers, target, positive)
        )
    return found


def ours(columns: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each column of our inferred schema in common terms."""
    return {
        name: {
            "type": LOGICAL.get(spec["type"], spec["type"]),
            "role": spec.get("role", "feature"),
            "positive": spec.get("positive"),
            "categories": spec.get("categories"),
            "range": (spec["min"], spec["max"]) if "min" in spec else None,
            "found": lambda marker, spec=spec: (
                bool(spec.get("nullable")) and marker.strip() in {"", *spec.get("missing", [])}
            ),
        }
        for name, spec in columns.items()
    }


def pandera_(schema: pa.DataFrameSchema) -> dict[str, dict[str, Any]]:
    """Each column of pandera's inferred schema in common terms (it has no roles)."""
    views = {}
    for name, column in schema.columns.items():
        dtype = str(column.dtype)
        kind = next(
            (k for k, p in (("number", ("int", "uint", "float")), ("bool", ("bool",)),
             ("category", ("category",)), ("datetime", ("datetime",))) if dtype.startswith(p)),
            "text",
        )  # fmt: skip
        stats = {check.name: check.statistics for check in column.checks}
        low = stats.get("greater_than_or_equal_to", {}).get("min_value")
        high = stats.get("less_than_or_equal_to", {}).get("max_value")
        views[name] = {
            "type": kind,
            "role": None,
            "positive": None,
            "categories": stats.get("isin", {}).get("allowed_values"),
            "range": None if low is None else (low, high),
            # No marker concept: found only if the reader made it NaN and the column nullable.
            "found": lambda _marker, nullable=column.nullable: bool(nullable),
        }
    return views


def usable(view: dict[str, Any], truth: str) -> bool:
    """A model can use the column as typed: numbers as numbers, categories listed."""
    return view["type"] == truth and (truth != "category" or bool(view["categories"]))


def flagged_ours(frame: pd.DataFrame, columns: dict[str, dict[str, Any]]) -> list[str]:
    """Columns our validation rejects (empty: accepted); ``*`` for the whole table."""
    try:
        schema = Schema.model_validate({"columns": columns})
        validate(prepare(frame, schema), schema)
    except DataValidationError as exc:
        return sorted({v.column or "*" for v in exc.violations})
    except ValueError:
        return ["*"]  # the schema itself does not load
    return []


def flagged_pandera(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> list[str]:
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        return sorted({str(c) if pd.notna(c) else "*" for c in exc.failure_cases["column"]})
    return []


def planted(case: Case) -> tuple[pd.DataFrame, list[str]]:
    """One bad value per feature, each in its own row: an unseen category, or ten times
    the largest number (written as text where the column is text)."""
    bad = case.frame.copy()
    features = [c for c, kind in case.truth.items() if kind in FEATURES]
    for row, name in enumerate(features):
        values = bad[name]
        if case.truth[name] == "category":
            bad.loc[row, name] = "UNSEEN"
            continue
        top = 10 * pd.to_numeric(values.astype(str).str.strip(), errors="coerce").max() + 1
        value = int(top) if pd.api.types.is_integer_dtype(values) else float(top)
        bad.loc[row, name] = str(value) if values.dtype == object else value
    return bad, features


def median_seconds(run: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass
class Inferrer:
    """How to infer a schema, see it in common terms, and find the columns it rejects."""

    infer: Callable[[pd.DataFrame], Any]
    view: Callable[[Any], dict[str, dict[str, Any]]]
    flagged: Callable[[pd.DataFrame, Any], list[str]]


def describe(view: dict[str, Any], kind: str, seen: pd.Series, markers: list[str] | None) -> dict:
    """One column as inferred: None where a measure does not apply to what it truly is."""
    span = view["range"]
    rng = "none" if span is None else "exact" if span == (seen.min(), seen.max()) else "widened"
    role = (view["role"] or "-") + (f" {view['positive']!r}" if view["positive"] else "")
    return {
        "type": view["type"],
        "usable": usable(view, kind) if kind in FEATURES else None,
        "categories": len(view["categories"] or []) if kind == "category" else None,
        "markers_found": None if markers is None else all(view["found"](m) for m in markers),
        "range": rng if kind == "number" else None,
        "role": None if kind in FEATURES else role,
    }


def measure(case: Case, splits: int = 5) -> dict[str, Any]:
    frame = case.frame
    inferrers = {
        "ours": Inferrer(
            lambda part: infer(part, target=case.target, positive=case.positive).columns,
            ours,
            flagged_ours,
        ),
        "pandera": Inferrer(pa.infer_schema, pandera_, flagged_pandera),
    }
    bad, features = planted(case)
    orders = [np.random.default_rng(seed).permutation(len(frame)) for seed in range(splits)]
    halves = [(order[: len(order) // 2], order[len(order) // 2 :]) for order in orders]
    result: dict[str, Any] = {"rows": len(frame), "features": len(features), "splits": splits}
    columns: dict[str, dict[str, Any]] = {c: {"truth": k} for c, k in case.truth.items()}
    for who, it in inferrers.items():
        schema = it.infer(frame)
        view = it.view(schema)
        for name, kind in case.truth.items():
            seen = pd.to_numeric(frame[name].astype(str).str.strip(), errors="coerce")
            columns[name][who] = describe(view[name], kind, seen, case.markers.get(name))
        held = [it.flagged(frame.iloc[b], it.infer(frame.iloc[a])) for a, b in halves]
        result[who] = {
            "own_data_rejected": it.flagged(frame, schema),
            "held_out_accepted": sum(not f for f in held),
            "held_out_columns_rejected": statistics.mean(len(f) for f in held),
            "planted_caught": [c for c in it.flagged(bad, schema) if c in features],
            "seconds": median_seconds(partial(it.infer, frame)),
        }
    default = pandera_(pa.infer_schema(case.default_frame))
    result["pandera"]["usable_with_default_read_csv"] = sum(
        usable(default[c], k) for c, k in case.truth.items() if k in FEATURES
    )
    result["columns"] = [{"column": c, **v} for c, v in columns.items()]
    return result


def cell(row: dict[str, Any], key: str) -> str:
    def show(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    a, b = row["ours"][key], row["pandera"][key]
    return "-" if a is None and b is None else f"{show(a)} / {show(b)}"


def table(result: dict[str, Any]) -> str:
    """Per column, *ours / pandera*; columns that read alike are one row."""
    keys = ["type", "usable", "categories", "markers_found", "range", "role"]
    groups: dict[tuple[str, ...], list[str]] = {}
    for row in result["columns"]:
        groups.setdefault((row["truth"], *(cell(row, k) for k in keys)), []).append(row["column"])
    lines = [
        "| column | is | type | model can use | categories listed | markers found | range | role |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cells, names in groups.items():
        label = names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


Test = Callable[[dict[str, Any], str], bool | None]  # (column as inferred, truth)


def count(results: dict[str, Any], who: str, test: Test) -> str:
    """k/n: of the n columns where ``test`` applies (not None), the k where it holds."""
    found = [test(r[who], r["truth"]) for res in results.values() for r in res["columns"]]
    return f"{sum(f is True for f in found)}/{sum(f is not None for f in found)}"


def dataset_section(name: str, res: dict[str, Any]) -> str:
    def rejected(columns: list[str]) -> str:
        return "accepted" if not columns else "rejected: " + ", ".join(columns)

    o, p, n, k = res["ours"], res["pandera"], res["features"], res["splits"]
    rows = [
        ("schema as is, on the data it came from",
         rejected(o["own_data_rejected"]), rejected(p["own_data_rejected"])),
        (f"inferred on a random half, the other half accepted (of {k} splits)",
         f"{o['held_out_accepted']}/{k}", f"{p['held_out_accepted']}/{k}"),
        ("columns rejected in the other half (mean per split)",
         f"{o['held_out_columns_rejected']:.1f}", f"{p['held_out_columns_rejected']:.1f}"),
        ("planted bad values caught", f"{len(o['planted_caught'])}/{n}",
         f"{len(p['planted_caught'])}/{n}"),
        ("time to infer (median of 5)",
         f"{o['seconds'] * 1e3:.1f} ms", f"{p['seconds'] * 1e3:.1f} ms"),
    ]  # fmt: skip
    body = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return f"""### {name} ({res["rows"]:,} rows, {len(res["columns"])} columns)

{table(res)}

| | ours | pandera |
|---|---|---|
{body}
"""


def report(results: dict[str, Any], seconds: float) -> str:
    def both(test: Test) -> str:
        return f"ours {count(results, 'ours', test)}, pandera {count(results, 'pandera', test)}"

    feature = sum(r["truth"] in FEATURES for res in results.values() for r in res["columns"])
    usable_ = both(lambda c, _: c["usable"])
    numbers = both(
        lambda c, t: (
            c["type"] == "number" if t == "number" and c["markers_found"] is not None else None
        )
    )
    categories = both(lambda c, t: bool(c["categories"]) if t == "category" else None)
    markers = both(lambda c, _: c["markers_found"])
    roles = count(results, "ours", lambda c, t: c["role"].startswith(t) if c["role"] else None)
    default = sum(res["pandera"]["usable_with_default_read_csv"] for res in results.values())
    speed = [res["ours"]["seconds"] / res["pandera"]["seconds"] for res in results.values()]
    held = {
        w: sum(res[w]["held_out_accepted"] for res in results.values()) for w in ("ours", "pandera")
    }
    splits = sum(res["splits"] for res in results.values())
    caught = {
        w: sum(len(res[w]["planted_caught"]) for res in results.values())
        for w in ("ours", "pandera")
    }
    planted_ = sum(res["features"] for res in results.values())
    churn = {r["column"]: r for r in results["awkward"]["columns"]}
    total, partner = churn["TotalCharges"]["pandera"], churn["Partner"]["pandera"]
    claims = total["type"] == partner["type"] == "text" and not partner["categories"]
    cancer = results["breast-cancer"]
    sections = "\n".join(dataset_section(name, res) for name, res in results.items())
    return f"""# Schema inference: ours against pandera's `infer_schema`

Command: `.venv/bin/python bench/schema_inference.py` ({dt.date.today().isoformat()}, \
{seconds:.0f} s). Machine: {os.cpu_count()} cores shared with other jobs, Python \
{platform.python_version()}, pandas {pd.__version__}, pandera {version("pandera")}.

Ours is `modelops.data.infer.infer` (what `make adopt` runs); pandera's is
`pandera.pandas.infer_schema`. Each table is written to CSV and read back with
`modelops.data.sources.read_files`, as adoption reads it: cells as written
(`keep_default_na=False`), so a blank, "?" or "NA" is text until a schema says otherwise.
The tables: `awkward()` and `breast_cancer()` of tests/integration/datasets.py, and
awkward-markers, awkward with "?" in 3 % of MonthlyCharges and "NA" in 1 % of tenure and
of Contract (the script's docstring says more).

## Totals

- **Feature columns typed as a model can use them: {usable_}** (of {feature}): numbers
  as numbers, categories as categories with their values listed. The listed values
  matter here: training/features.py builds its one-hot and ordinal encoders from the
  schema's categories, and validation rejects unknown ones (a bare scikit-learn encoder
  could learn them at fit time instead).
- Numeric columns holding missing markers read as numbers: {numbers}.
- Category columns with their categories listed: {categories}.
- Columns with planted missing markers where every marker is read as missing: {markers}.
- Id and target columns given their role (the tables show the positive label found): ours
  {roles}; pandera's `DataFrameSchema` has no roles (a person could add them by hand as a
  column's `metadata`, and categories as `Check.isin`).
- Schema as is accepts the data it came from: both, on every table. For pandera this
  checks little: its text columns carry no checks at all. Planted bad values (one per
  feature: "UNSEEN" in a category, ten times the largest number in a number) caught:
  ours {caught["ours"]}/{planted_}, pandera {caught["pandera"]}/{planted_}.
- Inferred on a random half, the other half accepted: ours {held["ours"]}/{splits}
  splits, pandera {held["pandera"]}/{splits} (where pandera types a column as text it
  checks nothing there, so it can only reject for a range).
- With pandas' default `read_csv` (which reads "NA" as missing, but not " " or "?")
  pandera types {default}/{feature} feature columns usably.
- Ours takes {min(speed):.0f} to {max(speed):.0f} times as long as pandera to infer.

The claims in infer.py's docstring {"hold" if claims else "do NOT all hold"} on awkward: \
pandera types TotalCharges (numbers and blanks) as {total["type"]}, the Yes/No column \
Partner as {partner["type"]} with {partner["categories"]} categories listed; it has no \
missing-value markers and no roles.

## Where pandera does better, or ours falls short

- **Speed**: pandera is faster (ratio above); both take milliseconds, once per adoption.
- **Exact ranges**: pandera's range checks are the minimum and maximum seen, so they catch
  a smaller shift. Ours widen the span by {MARGIN:.0%} of it on each side (not below 0
  for non-negative data; validation guards against impossible values, drift monitoring
  watches shifts) so new data is not rejected for a new maximum; even so, long-tailed
  columns can exceed it. On breast-cancer ({cancer["rows"]} rows), inferred on
  a random half, the other half is accepted in \
{cancer["ours"]["held_out_accepted"]}/{cancer["splits"]} splits by ours (mean \
{cancer["ours"]["held_out_columns_rejected"]:.1f} columns rejected) and \
{cancer["pandera"]["held_out_accepted"]}/{cancer["splits"]} by pandera (mean \
{cancer["pandera"]["held_out_columns_rejected"]:.1f}). `make adopt` infers from all the
  data, so this is a risk for later data, not for adoption itself.
- **No guessing**: pandera records dtypes and cannot misread a column. Ours uses
  heuristics (a text column at least 95 % numeric with at most 3 other values is numbers
  with missing markers; at most 100 values is a category) and can be wrong: in
  awkward-markers it lists Contract's "NA" as a category, not as a missing marker. It
  also needs a binary target and refuses a table without one.
- pandera works for any table and any pandas dtype; ours is only for `make adopt`.

## Per table

Cells read *ours / pandera*; "-": does not apply. Columns that read alike share a row.

{sections}"""


def main() -> None:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        results = {case.name: measure(case) for case in cases(Path(folder))}
    seconds = time.perf_counter() - start
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "schema_inference.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "schema_inference.md").write_text(report(results, seconds))
    print(f"wrote {RESULTS / 'schema_inference.md'} in {seconds:.1f} s")


if __name__ == "__main__":
    main()
