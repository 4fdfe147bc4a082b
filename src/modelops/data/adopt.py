"""``modelops adopt``: make the template yours in one command.

It reads your data, infers the schema, and rewrites params.yaml (comments kept, one
note per column to review); it DVC-tracks the data, retires the simulated example (its
data, its .dvc file, its settings and outputs) and renames the model, the Bento and the
desired states. Everything is checked before anything changes: the data must pass
validation against the inferred schema and the new settings must load. Run twice, it
refuses (the template is adopted already).
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from io import StringIO
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from modelops import paths
from modelops.config import ConfigError, Settings, read_params
from modelops.data.infer import Inferred, infer
from modelops.data.prepare import prepare
from modelops.data.sources import SourceError, read_raw
from modelops.data.validation import validate
from modelops.errors import InputError
from modelops.io import write_text
from modelops.schema import Schema
from modelops.vcs import dvc

log = logging.getLogger(__name__)

EXAMPLE_DATA = Path("data/raw")
DEPLOY = Path("deploy/environments")
OVERLAYS = Path("deploy/k8s/overlays")  # their image: <model.name>-service
MAX_SLICES = 3


class AdoptError(InputError):
    """The template cannot be adopted as asked; nothing was changed."""


@dataclass(frozen=True)
class Request:
    """What ``make adopt`` was given."""

    data: Path
    target: str
    positive: str | None = None
    time: str | None = None
    id_column: str | None = None
    name: str | None = None
    record: str | None = None
    records: str | None = None  # the plural, when not record + "s"


@dataclass(frozen=True)
class Plan:
    """What adoption will write, all checked before anything is."""

    params: str  # the new params.yaml
    data: Path  # where the data lives in the repository
    states: dict[Path, str]  # desired-state files with the model renamed
    settings: Settings  # the new params.yaml, loaded
    found: Inferred
    rows: int
    columns: int
    base_rate: float


def _yaml() -> YAML:
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 100
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


def _quoted(value: Any) -> Any:
    """Strings double-quoted, so YAML never reads Yes/No/On/Off as booleans."""
    return DoubleQuotedScalarString(value) if isinstance(value, str) else value


def _flow(spec: dict[str, Any]) -> CommentedMap:
    out = CommentedMap()
    for key, value in spec.items():
        if isinstance(value, list):
            seq = CommentedSeq(_quoted(v) for v in value)
            seq.fa.set_flow_style()
            out[key] = seq
        else:
            out[key] = _quoted(value) if key in ("positive",) else value
    out.fa.set_flow_style()
    return out


def _set(section: CommentedMap, key: str, value: Any, comment: str | None = None) -> None:
    """Set a key, replacing its end-of-line comment when one is given."""
    section[key] = value
    if comment is not None:
        section.ca.items.pop(key, None)
        section.yaml_add_eol_comment(comment, key)


def model_name(request: Request) -> str:
    """NAME, or the data file's name made into a model name (``telco-churn``)."""
    name = request.name or re.sub(r"[^a-z0-9]+", "-", request.data.stem.lower()).strip("-")[:40]
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?", name or ""):
        raise AdoptError(
            f"NAME={name!r}: up to 40 lower-case letters, digits and inner dashes "
            "(it names the model, the Bento and its image)"
        )
    return name


def _words(found: Inferred, target: str, record: str | None, records: str | None) -> dict[str, str]:
    if found.yes_no_target:
        positive = target.lower().replace("_", " ")
        negative = f"not {positive}"
    else:
        positive, negative = str(found.positive_label), str(found.negative_label)
    words = {"record": record or "record", "positive": positive, "negative": negative}
    return words | ({"records": records} if records else {})


def _schema_section(found: Inferred) -> CommentedMap:
    schema = CommentedMap()
    schema["unknown_categories"] = "error"
    schema["max_feature_auc"] = 0.99
    schema["missing_values"] = CommentedSeq([DoubleQuotedScalarString("")])
    schema["missing_values"].fa.set_flow_style()
    schema["strip_strings"] = True
    columns = CommentedMap()
    for name, spec in found.columns.items():
        columns[name] = _flow(spec)
        columns.yaml_add_eol_comment(found.notes[name], name)
    schema["columns"] = columns
    schema.yaml_set_comment_before_after_key(
        "columns", before="inferred by `make adopt`: review each column's note", indent=2
    )
    return schema


def _slices(found: Inferred) -> CommentedSeq:
    """A few categorical features with 2 to 12 values, as slices of the holdout."""
    chosen = [
        name
        for name, spec in found.columns.items()
        if spec.get("type") == "category" and 2 <= len(spec.get("categories", [])) <= 12
    ][:MAX_SLICES]
    seq = CommentedSeq()
    for name in chosen:
        item = CommentedMap(name=name, column=name)
        item.fa.set_flow_style()
        seq.append(item)
    return seq


def edit_params(
    doc: CommentedMap, found: Inferred, request: Request, data: Path, base_rate: float
) -> None:
    """Rewrite the parsed params.yaml for the adopted data."""
    name = model_name(request)
    _set(doc["data"], "source", "files", "files: a CSV/Parquet file or folder of them")
    _set(doc["data"], "path", str(data), f"DVC-tracked by {data}.dvc")
    doc.pop("simulator", None)
    doc["schema"] = _schema_section(found)
    doc["words"].pop("records", None)
    for key, value in _words(found, request.target, request.record, request.records).items():
        _set(doc["words"], key, value)
    card = doc["model_card"]
    _set(card, "intended_use", "Not written yet: what the model is for, who acts on its scores.")
    _set(card, "data", f"{data}: adopted with `make adopt`.")
    _set(card, "limits", "Not written yet: where the model should not be trusted.")
    _set(doc["model"], "name", name)
    evaluation = doc["evaluation"]
    rate = round(min(max(base_rate, 0.01), 0.5), 2)
    _set(
        evaluation,
        "review_rate",
        rate,
        "the share of records you can act on (set by adopt to the positive rate)",
    )
    _set(evaluation, "decline_rate", round(rate / 10, 4), "the share the model may act on alone")
    costs = CommentedMap(missed_positive=1.0, false_alarm=1.0, per_action=0.0)
    _set(evaluation, "costs", costs, "a number per row, or a numeric column: set your own")
    _set(evaluation, "slices", _slices(found), "categorical columns with few values")
    gates = doc["gates"]
    _set(gates, "floors", CommentedMap(), "none yet: add e.g. roc_auc: 0.75 once you know")
    gates["champion"]["cost_per_1k"] = 10.0
    _set(doc["behaviour"], "expect", CommentedMap(), "e.g. {tenure: decreases}: declare yours")


def _rename_states(old: str, new: str) -> dict[Path, str]:
    """Desired-state files with the model's tags, and the Kubernetes overlays with its image,
    renamed (text edits, comments kept)."""
    edited = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        text = path.read_text()
        renamed = re.sub(
            rf"^(\s*(?:champion|challenger):\s*){re.escape(old)}:",
            rf"\g<1>{new}:",
            text,
            flags=re.M,
        )
        if renamed != text:
            edited[path] = renamed
    for path in sorted(OVERLAYS.glob("*/kustomization.yaml")):
        text = path.read_text()
        renamed = re.sub(
            rf"^(\s*newName:\s*){re.escape(old)}-service$", rf"\g<1>{new}-service", text, flags=re.M
        )
        if renamed != text:
            edited[path] = renamed
    return edited


def _in_repo(data: Path) -> Path:
    """Where the data will live: as given when inside the repository, else data/<name>."""
    resolved = data.resolve()
    root = Path.cwd().resolve()
    if resolved.is_relative_to(root):
        return resolved.relative_to(root)
    return Path("data") / data.name


def plan(request: Request, params: Path = Path("params.yaml")) -> Plan:
    """Check everything and compute the changes, without changing anything."""
    doc = _yaml().load(params.read_text())
    source = doc.get("data", {}).get("source")
    if source != "simulator":
        raise AdoptError(
            f"{params}: data.source is {source!r}, not the example's 'simulator': this "
            "template is adopted already. Edit params.yaml by hand (README: Adapting the "
            "template) or start again from a fresh clone of the template."
        )
    if not request.data.exists():
        raise AdoptError(f"DATA={request.data}: no such file or folder")
    try:
        frame = read_raw("files", request.data)
    except (SourceError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise AdoptError(f"DATA={request.data}: cannot read it: {exc}") from exc
    if frame.empty or frame.shape[1] < 2:
        raise AdoptError(f"DATA={request.data}: needs rows and at least two columns")
    found = infer(
        frame,
        target=request.target,
        positive=request.positive,
        time=request.time,
        id_column=request.id_column,
    )
    data = _in_repo(request.data)
    if data.is_relative_to(EXAMPLE_DATA):
        raise AdoptError(
            f"DATA={request.data}: {EXAMPLE_DATA} holds the example; put yours elsewhere"
        )
    try:
        schema = Schema.model_validate({"columns": found.columns})
    except ValidationError as exc:
        problems = "; ".join(err["msg"] for err in exc.errors())
        raise AdoptError(f"DATA={request.data}: no usable schema: {problems}") from exc
    valid = validate(prepare(frame, schema), schema, source=str(request.data))
    base_rate = float(valid[schema.target].mean())
    old_name = str(doc["model"]["name"])
    edit_params(doc, found, request, data, base_rate)
    if schema.time_column:
        _fit_time_split(doc, valid[schema.time_column])
    out = StringIO()
    _yaml().dump(doc, out)
    text = re.sub(r"(?<!\n)\n(?=[a-z_]+:)", "\n\n", out.getvalue())  # a blank line per section
    try:
        settings = Settings.model_validate(read_params(text))
    except Exception as exc:
        raise ConfigError(f"the adopted params.yaml would not load: {exc}") from exc
    name = settings.model.name
    return Plan(
        text, data, _rename_states(old_name, name), settings, found, *frame.shape, base_rate
    )


def _fit_time_split(doc: CommentedMap, times: pd.Series) -> None:
    """Hold out about a quarter of the weeks when the setting would take more."""
    weeks = int(times.dt.to_period("W").nunique())
    if weeks < 2:
        raise AdoptError(
            "the time column spans one week: no later weeks to hold out; adopt without "
            "TIME (a stratified split) or with more data"
        )
    if weeks < 4 * int(doc["split"]["holdout_weeks"]):
        _set(doc["split"], "holdout_weeks", max(1, weeks // 4), f"of the {weeks} weeks in the data")


def apply(request: Request, planned: Plan, params: Path = Path("params.yaml")) -> None:
    """Make the planned changes; on a failure undo the ones made so far."""
    undo: list[Callable[[], None]] = []
    data = planned.data
    try:
        if request.data.resolve() != data.resolve():
            if data.exists():
                raise AdoptError(f"{data} exists already: move it away or pass DATA={data}")
            data.parent.mkdir(parents=True, exist_ok=True)
            copy = shutil.copytree if request.data.is_dir() else shutil.copy2
            copy(request.data, data)
            undo.append(partial(_remove, data))
        gitignore = data.parent / ".gitignore"
        before = gitignore.read_text() if gitignore.exists() else None
        undo.append(partial(_restore, gitignore, before))
        undo.append(partial(_remove, Path(f"{data}.dvc")))
        dvc("add", str(data))
        for path, text in [(params, planned.params), *planned.states.items()]:
            undo.append(partial(_restore, path, path.read_text()))
            write_text(text, path)
    except Exception:
        for step in reversed(undo):
            step()
        raise
    # The point of no return: retire the example and its outputs.
    example = Path(f"{EXAMPLE_DATA}.dvc")
    if example.exists():
        dvc("remove", str(example), check=False)
    _remove(EXAMPLE_DATA)
    for output in (*pipeline_outputs(), paths.DVC_LOCK):
        output.unlink(missing_ok=True)
    for prediction_log in paths.HOLDOUT_SCORES.parent.glob("predictions.db*"):
        prediction_log.unlink()
    _remove(paths.PR)
    if dvc("push", f"{data}.dvc", check=False).returncode != 0:
        log.warning("could not push %s to the DVC remote; it stays in the local cache", data)


def pipeline_outputs(pipeline: Path = Path("dvc.yaml")) -> list[Path]:
    """Every file the stages write (outs and metrics), as dvc.yaml declares them."""
    stages = read_params(pipeline.read_text())["stages"]
    return [
        Path(next(iter(item)) if isinstance(item, dict) else item)
        for stage in stages.values()
        for kind in ("outs", "metrics")
        for item in stage.get(kind, [])
    ]


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _restore(path: Path, text: str | None) -> None:
    if text is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(text)


def report(request: Request, planned: Plan) -> str:
    """What changed and what to review next."""
    data, found, settings = planned.data, planned.found, planned.settings
    name, schema = settings.model.name, settings.data_schema
    roles = {
        role: getattr(schema, attr) or "none"
        for role, attr in (("id", "id_column"), ("time", "time_column"), ("target", "target"))
    }
    nullable = [c for c, s in found.columns.items() if s.get("nullable")]
    ignored = [c for c, s in found.columns.items() if s.get("role") == "ignore"]
    states = ", ".join(str(p) for p in planned.states) or "none"
    lines = [
        f"Adopted {request.data} ({planned.rows:,} rows, {planned.columns} columns) "
        f"as model '{name}'.",
        "",
        "Changed:",
        f"  params.yaml   data (files: {data}), schema ({len(found.columns)} columns inferred), "
        "words, model_card, model.name, evaluation (review rate, costs, slices), "
        "gates.floors, behaviour.expect; the simulator settings are gone",
        f"  {data}.dvc   new: DVC tracks your data (data goes to the DVC remote; commit this file)",
        f"  {EXAMPLE_DATA}.dvc, {EXAMPLE_DATA}/   removed: the simulated example data",
        f"  desired states   {states}: serve {name}:latest; the Bento is {name}-service",
        "  dvc.lock, metrics/, plots/, models/lineage.json, models/model_card.md   removed: "
        "the example's outputs (`make run` writes yours)",
        "",
        "Review next, in params.yaml:",
        f"  - schema.columns: roles id={roles['id']}, time={roles['time']}, "
        f"target={roles['target']} (positive label {found.positive_label!r}); "
        "each column's comment says what was seen",
        f"  - nullable columns: {', '.join(nullable) or 'none'}; ignored: "
        f"{', '.join(ignored) or 'none'}",
        f"  - words: a row is a '{settings.words.record}', the classes "
        f"'{settings.words.positive}' / '{settings.words.negative}'",
        f"  - evaluation.review_rate: {settings.evaluation.review_rate:.2f} (the positive rate is "
        f"{planned.base_rate:.1%}); set it to the share you can act on",
        "  - evaluation.costs, gates.floors, behaviour.expect, model_card: yours to write",
        "",
        "Then: make run && make test, and commit: git add -A && git commit -m 'Adopt the template'",
    ]
    return "\n".join(lines)


def adopt(request: Request, params: Path = Path("params.yaml")) -> str:
    """Plan, apply and describe the adoption."""
    planned = plan(request, params)
    apply(request, planned, params)
    return report(request, planned)
