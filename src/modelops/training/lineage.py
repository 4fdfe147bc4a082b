"""Lineage: the metadata record of a trained model version and its model card.

The record names the model (id = name + content hash of the model file), the git
commit it was trained at, the data hashes (raw data from dvc.lock, train and holdout
files hashed directly), params, row counts and time ranges, library versions and
metrics. The decision threshold travels with it, so serving uses the one evaluated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import platform
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from modelops.config import Settings
from modelops.schema import Schema
from modelops.vcs import git_state

LIBRARIES = ("scikit-learn", "pandas", "numpy", "pyarrow", "pandera", "dvc", "modelops")


def file_md5(path: Path | str) -> str:
    """MD5 of a file's bytes (what DVC records for a file)."""
    digest = hashlib.md5(usedforsecurity=False)
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def raw_data_hash(lock_path: Path | str, raw_path: Path | str) -> str | None:
    """The hash dvc.lock recorded for the raw data the validate stage read."""
    lock = Path(lock_path)
    if not lock.exists():
        return None
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    for dep in stages.get("validate", {}).get("deps", []):
        if Path(dep.get("path", "")) == Path(raw_path):
            md5 = dep.get("md5")
            return str(md5) if md5 else None
    return None


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the model."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def lineage_columns(schema: Schema) -> list[str]:
    """The columns ``describe_part`` reads."""
    return [c for c in (schema.target, schema.time_column) if c]


def describe_part(frame: pd.DataFrame, path: Path, schema: Schema) -> dict[str, Any]:
    """Rows, positives, time range and hash of a data part."""
    part: dict[str, Any] = {
        "path": str(path),
        "md5": file_md5(path),
        "rows": len(frame),
        "positives": int(frame[schema.target].sum()),
    }
    if schema.time_column:
        times = frame[schema.time_column]
        part["time_min"], part["time_max"] = str(times.min()), str(times.max())
    return part


def build_record(
    *,
    settings: Settings,
    model_path: Path,
    parts: dict[str, dict[str, Any]],
    metrics: dict[str, Any],
    baselines: dict[str, Any],
    raw_hash: str | None,
) -> dict[str, Any]:
    """The lineage record of one model version."""
    digest = file_md5(model_path)
    return {
        "model_id": f"{settings.model.name}-{digest[:12]}",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_state(),
        "model": {"path": str(model_path), "md5": digest, **settings.model.model_dump()},
        "features": settings.data_schema.features,
        "decision": {
            key: metrics["holdout"][key]
            for key in ("threshold", "review_rate", "decline_threshold", "decline_rate")
        },
        "data": {
            "source": settings.data.source,
            "raw": {"path": str(settings.data.path), "md5": raw_hash},
            **parts,
        },
        # The data is identified by its hash; simulator settings are not the model's params.
        "params": settings.model_dump(mode="json", exclude={"data_schema", "simulator"}),
        "libraries": library_versions(),
        "metrics": {k: v for k, v in metrics.items() if k != "holdout"},
        "baselines": {name: b["lift"] for name, b in baselines.items()},
    }


def _fmt(estimate: dict[str, float]) -> str:
    return f"{estimate['value']:.4f} [{estimate['ci_low']:.4f}, {estimate['ci_high']:.4f}]"


def _part_row(name: str, part: dict[str, Any]) -> str:
    span = f"{part.get('time_min', '')} | {part.get('time_max', '')}"
    return f"| {name} | {part['rows']:,} | {part['positives']:,} | {span} |"


def _commit(git: dict[str, Any]) -> str:
    if not git["commit"]:
        return "no git commit (outside a repository or before the first commit)"
    return f"commit `{git['commit']}`" + (" with uncommitted changes" if git["dirty"] else "")


def _maybe(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def model_card(record: dict[str, Any], slices: dict[str, Any], confidence: float) -> str:
    """A short model card in markdown."""
    data = record["data"]
    train, holdout = data["train"], data["holdout"]
    metric_rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in record["metrics"].items())
    lift_rows = "\n".join(
        f"| {name} | {lift['roc_auc']['value']:+.4f} | {lift['average_precision']['value']:+.4f} |"
        for name, lift in record["baselines"].items()
    )
    slice_rows = "\n".join(
        f"| {group} | {value} | {m['rows']:,} | {m['positives']:,} | {_maybe(m['roc_auc'])} |"
        for group, values in slices.items()
        for value, m in values.items()
    )
    decision = record["decision"]
    return f"""# Model card: {record["model_id"]}

## Intended use
Scores card transactions for fraud risk in real time. Transactions scoring at or above
{decision["threshold"]:.4f} (the top {decision["review_rate"]:.1%} of the holdout) go to
manual review.
Not intended for decisions about people beyond a transaction review, nor for data unlike
its training data (see Limits).

## Model
`{record["model"]["estimator"]}` in a scikit-learn Pipeline with schema-driven
preprocessing ({record["model"]["encoding"]} encoding); features: {", ".join(record["features"])}.
Trained at {_commit(record["git"])}.

## Data
| part | rows | positives | from | to |
|---|---:|---:|---|---|
{_part_row("train", train)}
{_part_row("holdout", holdout)}

Raw data `{data["raw"]["path"]}` md5 `{data["raw"]["md5"]}`.

## Metrics on the holdout ({confidence:.0%} bootstrap intervals)
| metric | value [interval] |
|---|---|
{metric_rows}

Lift over baselines (model minus baseline, same holdout rows):

| baseline | ROC-AUC | average precision |
|---|---:|---:|
{lift_rows}

## Slices
| slice | value | rows | positives | ROC-AUC |
|---|---|---:|---:|---:|
{slice_rows}

## Limits
- Fraud tactics change within weeks; performance decays as the holdout ages. Retrain on
  fresh weeks and watch the monitoring report.
- Slices with few positives have wide uncertainty; do not read small differences there.
- Labels arrive late (chargebacks); recent weeks may hold fraud not yet labelled.
"""
