"""Model versions in the BentoML model store: saving the pipeline's model with its
lineage, and loading (and refusing) a version for serving.

A version is saved as ``<model.name>:<first 12 hex of the model file's md5>``, the same
id as lineage.json's model_id, so a tag names exactly one set of model bytes.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import pandas as pd
from bentoml.exceptions import NotFound

from modelops import paths
from modelops.config import Settings
from modelops.errors import InputError
from modelops.io import load_model, read_json, write_json
from modelops.schema import Schema
from modelops.serving.policy import Thresholds
from modelops.serving.scorer import Scorer, reference_values
from modelops.training.lineage import file_md5
from modelops.vcs import git_state

MODEL_FILE = "model.joblib"
LINEAGE_FILE = "lineage.json"
REFERENCE_FILE = "reference.json"


class ModelRefusedError(InputError):
    """A model version is missing, corrupt or does not fit the serving schema."""


@dataclass(frozen=True)
class ModelVersion:
    """One loaded model version, ready to score."""

    tag: str
    scorer: Scorer
    thresholds: Thresholds
    lineage: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """What /metadata shows about this version."""
        data = self.lineage["data"]
        return {
            "tag": self.tag,
            "model_id": self.lineage["model_id"],
            "code_md5": self.lineage["code"]["md5"],
            "data_md5": {part: data[part]["md5"] for part in ("raw", "train", "holdout")},
            "metrics": {k: v["value"] for k, v in self.lineage["metrics"].items()},
            "thresholds": {"review": self.thresholds.review, "decline": self.thresholds.decline},
            "features": self.scorer.columns,
            "fast_path": self.scorer.fast is not None,
        }


def resolve(tag: str) -> str:
    """The exact tag (``name:latest`` becomes the newest version); LookupError if absent."""
    try:
        return str(bentoml.models.get(tag).tag)
    except (NotFound, ValueError) as exc:
        raise LookupError(
            f"model '{tag}' is not in the BentoML model store; `make bento` saves the "
            "current model, `bentoml models list` shows what is there"
        ) from exc


def save_current(
    settings: Settings,
    root: Path | str = ".",
    version: str | None = None,
    commit: str | None = None,
) -> str:
    """Save the pipeline's current model (models/) into the BentoML model store, with
    its lineage and reason-code reference values, as the newest version (what
    ``name:latest`` names); return its tag. A no-op when it already is the newest.
    ``version``: a registered version (vX.Y.Z) to tag it with instead of its model id;
    ``commit``: the commit it came from, when ``root`` is not that commit's checkout."""
    root = Path(root)
    model_path, lineage_path = root / paths.MODEL, root / paths.LINEAGE
    if not model_path.exists() or not lineage_path.exists():
        raise InputError(f"no trained model at {model_path}: run `make repro` first")
    lineage = read_json(lineage_path)
    if lineage["model"]["md5"] != file_md5(model_path):
        raise InputError(f"{lineage_path} describes another model file: run `make repro`")
    if "decline_threshold" not in lineage.get("decision", {}):
        raise InputError(f"{lineage_path} has no decline threshold: run `make repro`")
    name = settings.model.name
    tag = f"{name}:{version}" if version else version_tag(name, lineage)
    with contextlib.suppress(LookupError):
        if resolve(f"{name}:latest") == resolve(tag):
            return tag
        bentoml.models.delete(tag)  # saved before a newer one: save again, so `latest` is current
    model = load_model(model_path)
    columns = list(model.feature_names_in_)
    train = pd.read_parquet(root / paths.TRAIN, columns=columns)
    reference = reference_values(train, settings.data_schema, columns)
    return save(
        name,
        model_path,
        lineage,
        reference,
        commit=commit or git_state(root)["commit"],
        version=version,
        profile=root / paths.PROFILE,
    )


def version_tag(name: str, lineage: dict[str, Any]) -> str:
    """``name:<version>``, the version being lineage's model id without the name."""
    return f"{name}:{lineage['model_id'].removeprefix(name + '-')}"


def save(
    name: str,
    model_path: Path,
    lineage: dict[str, Any],
    reference: dict[str, Any],
    commit: str | None = None,
    version: str | None = None,
    profile: Path | None = None,
) -> str:
    """Save a model file as ``name:<version from lineage's model_id>`` (or ``name:<version>``
    for a registered version); a tag already in the store is kept as it is (same id, same
    bytes). ``commit``: the git commit it was saved from (lineage identifies the code by
    its hash instead); ``profile``: monitoring's reference profile, kept beside it."""
    tag = f"{name}:{version}" if version else version_tag(name, lineage)
    try:
        return resolve(tag)
    except LookupError:
        pass
    metadata = {
        "model_id": lineage["model_id"],
        "git_commit": commit or "",
        "code_md5": lineage["code"]["md5"],
        "raw_data_md5": lineage["data"]["raw"]["md5"] or "",
        "train_md5": lineage["data"]["train"]["md5"],
        "holdout_md5": lineage["data"]["holdout"]["md5"],
        "roc_auc": lineage["metrics"]["roc_auc"]["value"],
        "review_threshold": lineage["decision"]["threshold"],
        "decline_threshold": lineage["decision"]["decline_threshold"],
    }
    with bentoml.models.create(
        tag, module="modelops.serving", labels={"project": name}, metadata=metadata
    ) as saved:
        target = Path(saved.path)
        shutil.copyfile(model_path, target / MODEL_FILE)
        write_json(lineage, target / LINEAGE_FILE)
        write_json(reference, target / REFERENCE_FILE)
        if profile is not None and profile.exists():  # monitoring's reference profile
            shutil.copyfile(profile, target / profile.name)
    return tag


def load_version(tag: str, schema: Schema) -> ModelVersion:
    """Load a version from the store; ModelRefusedError names what is wrong with it."""
    try:
        stored = bentoml.models.get(tag)
    except (NotFound, ValueError) as exc:
        raise ModelRefusedError(f"model '{tag}' is not in the BentoML model store") from exc
    folder = Path(stored.path)
    try:
        model = load_model(folder / MODEL_FILE)
        lineage = read_json(folder / LINEAGE_FILE)
        reference = read_json(folder / REFERENCE_FILE)
        decision = lineage["decision"]
        thresholds = Thresholds(decision["threshold"], decision["decline_threshold"])
    except Exception as exc:  # unpickling garbage can raise almost anything
        raise ModelRefusedError(f"model '{tag}' is corrupt or incomplete: {exc!r}") from exc
    columns = list(getattr(model, "feature_names_in_", []))
    unknown = [c for c in columns if c not in schema.features]
    if not columns or unknown or not hasattr(model, "predict_proba"):
        raise ModelRefusedError(
            f"model '{tag}' does not fit the serving schema: it needs feature(s) "
            f"{unknown or columns} that schema.columns does not declare as features"
        )
    try:
        scorer = Scorer(model, schema, reference)
        probe = scorer.score([reference])
    except Exception as exc:
        raise ModelRefusedError(f"model '{tag}' cannot score a typical record: {exc!r}") from exc
    if not (np.isfinite(probe).all() and ((probe >= 0) & (probe <= 1)).all()):
        raise ModelRefusedError(f"model '{tag}' returned an invalid probability {probe}")
    return ModelVersion(str(stored.tag), scorer, thresholds, lineage)
