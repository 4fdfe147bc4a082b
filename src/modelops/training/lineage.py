"""Lineage: the metadata record of a trained model version and its model card.

The record names the model (id = name + content hash of the model file), the code
(hashes of the code files the train, baselines and evaluate stages declare in
dvc.yaml), the data hashes (raw data from dvc.lock, train and holdout files hashed
directly), the params sections those stages declare, row counts and time ranges,
library versions and metrics. The decision threshold travels with it, so serving uses
the one evaluated. Nothing in it depends on when or from which commit it was made, so
rerunning the pipeline on the same inputs writes the same bytes (the release step
records the commit).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from modelops.config import DEFAULT_WORDS, ModelCardSettings, Settings, WordSettings
from modelops.errors import InputError
from modelops.schema import Schema

LIBRARIES = ("scikit-learn", "pandas", "numpy", "pyarrow", "pandera", "dvc", "modelops")
PIPELINE = Path("dvc.yaml")
STAGES = ("train", "baselines", "evaluate")  # the stages that shape the model and its record
DEFAULT_CARD = ModelCardSettings()


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


@dataclass(frozen=True)
class StageInputs:
    """What some stages of dvc.yaml declare: code files and params sections."""

    code: tuple[str, ...]
    params: tuple[str, ...]


def _names(items: Iterable[Any]) -> list[str]:
    """Entries of a stage's deps or params list (a plain name, or a mapping's keys)."""
    return [name for item in items for name in (item if isinstance(item, dict) else [item])]


def stage_inputs(pipeline: Path | str = PIPELINE, stages: Iterable[str] = STAGES) -> StageInputs:
    """The ``.py`` dependencies and the params.yaml sections ``stages`` declare."""
    try:
        declared = yaml.safe_load(Path(pipeline).read_text())["stages"]
        chosen = [declared[name] for name in stages]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise InputError(f"{pipeline}: cannot read the stages {list(stages)}: {exc!r}") from exc
    code, sections = set(), set()
    for stage in chosen:
        code |= {d for d in _names(stage.get("deps", [])) if str(d).endswith(".py")}
        for item in stage.get("params", []):
            if isinstance(item, dict):  # {file: [keys]}: keys of another params file
                sections |= {str(k).split(".")[0] for v in item.values() for k in v or []}
            else:
                sections.add(str(item).split(".")[0])
    return StageInputs(tuple(sorted(code)), tuple(sorted(sections)))


def code_hashes(files: Iterable[str], root: Path | str = ".") -> dict[str, Any]:
    """MD5 of each code file, and one MD5 over all of them (of ``md5  path`` lines)."""
    hashes = {}
    for name in sorted(files):
        try:
            hashes[name] = file_md5(Path(root) / name)
        except OSError as exc:
            raise InputError(f"{name}: a code dependency in dvc.yaml: {exc}") from exc
    lines = "".join(f"{md5}  {name}\n" for name, md5 in hashes.items())
    combined = hashlib.md5(lines.encode(), usedforsecurity=False).hexdigest()
    return {"md5": combined, "files": hashes}


def build_record(
    *,
    settings: Settings,
    model_path: Path,
    parts: dict[str, dict[str, Any]],
    metrics: dict[str, Any],
    baselines: dict[str, Any],
    raw_hash: str | None,
    pipeline: Path = PIPELINE,
) -> dict[str, Any]:
    """The lineage record of one model version; ``pipeline`` (dvc.yaml) says which code
    files and params sections the stages depend on."""
    digest = file_md5(model_path)
    declared = stage_inputs(pipeline)
    params = settings.model_dump(mode="json", by_alias=True)
    return {
        "model_id": f"{settings.model.name}-{digest[:12]}",
        "model": {"path": str(model_path), "md5": digest, **settings.model.model_dump()},
        "code": code_hashes(declared.code, pipeline.parent),
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
        "params": {k: params[k] for k in declared.params if k in params},
        "libraries": library_versions(),
        "metrics": {k: v for k, v in metrics.items() if k != "holdout"},
        "baselines": {name: b["lift"] for name, b in baselines.items()},
    }


def _fmt(estimate: dict[str, float]) -> str:
    return f"{estimate['value']:.4f} [{estimate['ci_low']:.4f}, {estimate['ci_high']:.4f}]"


def _part_row(name: str, part: dict[str, Any]) -> str:
    span = f"{part.get('time_min', '')} | {part.get('time_max', '')}"
    return f"| {name} | {part['rows']:,} | {part['positives']:,} | {span} |"


def _maybe(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def card_file(prose: ModelCardSettings) -> str | None:
    """The text of ``model_card.file``, or None when the prose is in params.yaml."""
    if prose.file is None:
        return None
    try:
        return prose.file.read_text().strip()
    except OSError as exc:
        raise InputError(f"model_card.file: cannot read {prose.file}: {exc}") from exc


def model_card(
    record: dict[str, Any],
    slices: dict[str, Any],
    confidence: float,
    prose: ModelCardSettings = DEFAULT_CARD,
    words: WordSettings = DEFAULT_WORDS,
) -> str:
    """A short model card in markdown: the team's prose (``model_card`` in params.yaml,
    or its ``file``) around the facts of the lineage record."""
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
    decision, code = record["decision"], record["code"]
    text = card_file(prose)
    intended = f"{text}\n" if text else f"## Intended use\n{prose.intended_use.strip()}\n"
    about_data = f"{prose.data.strip()}\n\n" if prose.data.strip() and not text else ""
    limits = "" if text else f"\n## Limits\n{prose.limits.strip()}\n"
    return f"""# Model card: {record["model_id"]}

{intended}
## Decision
{words.plural.capitalize()} scoring at or above {decision["threshold"]:.4f} (the top \
{decision["review_rate"]:.1%} of the holdout, `evaluation.review_rate`) are flagged for action;
at or above {decision["decline_threshold"]:.4f} (the top {decision["decline_rate"]:.1%}, \
`evaluation.decline_rate`) the service may act on its own when its automation allows.

## Model
`{record["model"]["estimator"]}` in a scikit-learn Pipeline with schema-driven
preprocessing ({record["model"]["encoding"]} encoding); features: {", ".join(record["features"])}.
Code: md5 `{code["md5"]}` over the {len(code["files"])} code files the train, baselines and
evaluate stages declare in dvc.yaml (each file's md5 is in the lineage record).

## Data
{about_data}| part | rows | {words.positive} | from | to |
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
| slice | value | rows | {words.positive} | ROC-AUC |
|---|---|---:|---:|---:|
{slice_rows}
{limits}"""
