"""The detection table: every detector of `make monitor` together, over reseeded trials.

Each trial splits data/holdout.parquet at random: one half is the reference (a lineage
with its ROC-AUC and interval, and a reference profile built from it, as the pipeline
builds them, the scores of the current model), the other half the live traffic. A prediction log
(SQLite) holds six weekly windows ending at NOW (five weeks after the training data
ended) of distinct rows of the live half (5,000 a week, the latest 30,000), scored by
the model; labels come back after a gamma-distributed
delay (mean 6 days, both classes). Both halves are one population, so nothing should
alarm until one change is made:

- none: nothing (a false alarm: any finding of any detector, the verdict not ok);
- mean shift: one continuous feature of the latest window moved by 0.1 of its SD;
- new category: a level the schema lacks in 1 % of the latest window's rows;
- unit change: one continuous float feature of the latest window multiplied by 100;
- concept shift: in the last three windows half the positives swap labels with as many
  negatives; inputs, scores and the positive rate stay as they were, so only the
  labels show it.

The input changes count as detected when a finding names the changed feature; the
concept shift when the decay detector calls for retraining. `check.run` is the
production check, with params.yaml's settings. The log is written with sqlite3 directly
(in the format SQLAlchemy writes, the schema by the project's migrations), 30 times
faster than row by row. Writes bench/results/detection.md.

    .venv/bin/python bench/detection.py [trials [scenario ...]]
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta

from drift_power import new_category, shifted  # the same changes as the drift benchmark
from modelops import paths
from modelops.config import Settings, load_settings
from modelops.io import load_model, read_json, write_json
from modelops.monitoring import check
from modelops.monitoring.performance import estimates
from modelops.monitoring.profile import Profile, build_profile
from modelops.monitoring.reference import profile as reference_profile
from modelops.schema import Schema
from modelops.serving.predlog import make_engine, migrate
from modelops.training.metrics import Scored
from modelops.training.scoring import score

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "detection.md"
TRIALS = 60
WEEKS, HISTORY_ROWS, WINDOW_ROWS = 6, 5_000, 30_000
SCENARIOS = ("none", "mean shift", "new category", "unit change", "concept shift")
INSERT = (
    "INSERT INTO predictions (request_id, record_id, created_at, model_version, route, "
    "automation, score, decision, latency_ms, inputs, reasons) "
    "VALUES (?, ?, ?, ?, 'champion', 'partial', ?, 'approve', 1.0, ?, '[]')"
)
FEEDBACK = "INSERT INTO feedback (request_id, record_id, label, received_at) VALUES (?, ?, ?, ?)"


def reference_root(
    folder: Path, reference: pd.DataFrame, settings: Settings, lineage: dict[str, Any]
) -> None:
    """models/lineage.json and models/profile.json of the reference half, as the check
    reads the current model's."""
    schema, evaluation = settings.data_schema, settings.evaluation
    scores = reference["_score"].to_numpy()
    review = Scored.at_review_rate(scores, evaluation.review_rate).threshold
    decline = Scored.at_review_rate(scores, evaluation.decline_rate).threshold
    positives = int(reference[schema.target].sum())
    auc = estimates(reference, schema.target, "_score", settings)["roc_auc"]
    lineage = lineage | {
        "metrics": lineage["metrics"] | {"roc_auc": auc.as_dict()},
        "data": lineage["data"]
        | {
            "holdout": lineage["data"]["holdout"] | {"rows": len(reference), "positives": positives}
        },
        "decision": lineage["decision"] | {"threshold": review, "decline_threshold": decline},
    }
    (folder / "models").mkdir(parents=True)
    write_json(lineage, folder / paths.LINEAGE)
    columns = [*schema.features, schema.time_column]
    profile = build_profile(
        reference[columns],
        reference["_score"],
        schema,
        settings.monitoring.drift.bins,
        (review, decline),
    )
    profile.save(folder / paths.PROFILE)


def week_frames(pool: pd.DataFrame, rng: np.random.Generator) -> list[pd.DataFrame]:
    """WEEKS windows of distinct rows of ``pool`` (no row twice: a resample would add the
    pool's own sampling noise to every window), the last WINDOW_ROWS long."""
    order = rng.permutation(len(pool))
    ends = np.cumsum([HISTORY_ROWS] * (WEEKS - 1) + [WINDOW_ROWS])
    return [
        pool.iloc[order[end - n : end]].reset_index(drop=True)
        for end, n in zip(ends, [HISTORY_ROWS] * (WEEKS - 1) + [WINDOW_ROWS], strict=True)
    ]


def swap_labels(frame: pd.DataFrame, target: str, rng: np.random.Generator) -> pd.DataFrame:
    """Half the positives become negatives and as many negatives positives."""
    labels = frame[target].to_numpy().copy()
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    flipped = rng.choice(positives, positives.size // 2, replace=False)
    raised = rng.choice(negatives, flipped.size, replace=False)
    labels[flipped], labels[raised] = 0, 1
    return frame.assign(**{target: labels})


def new_log(path: Path) -> None:
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()


def append_weeks(
    path: Path,
    weeks: list[tuple[int, pd.DataFrame]],
    now: pd.Timestamp,
    settings: Settings,
    tag: str,
    rng: np.random.Generator,
) -> None:
    """Log each (weeks back, frame): inputs (every field but the target), the score, and
    the labels that are back by ``now``."""
    schema = settings.data_schema
    fields = [c for c in schema.columns if c != schema.target]
    with sqlite3.connect(path) as connection:
        for age, frame in weeks:
            start = now - pd.Timedelta(days=7 * (age + 1))
            created = start + pd.to_timedelta(np.sort(rng.uniform(0, 7, len(frame))), unit="D")
            back = created + pd.to_timedelta(rng.gamma(2.0, 3.0, len(frame)), unit="D")
            ids = [f"{age}-{i}" for i in range(len(frame))]
            inputs = frame[fields].to_json(orient="records", lines=True, date_format="iso")
            text = created.strftime("%Y-%m-%d %H:%M:%S.%f")
            connection.executemany(
                INSERT,
                zip(ids, ids, text, [tag] * len(ids), frame["_score"].astype(float),
                    inputs.splitlines(), strict=True),
            )  # fmt: skip
            arrived = back < now
            connection.executemany(
                FEEDBACK,
                zip(np.asarray(ids)[arrived], np.asarray(ids)[arrived],
                    frame[schema.target].to_numpy()[arrived].tolist(),
                    back[arrived].strftime("%Y-%m-%d %H:%M:%S.%f"), strict=True),
            )  # fmt: skip


def detected(verdict: check.Verdict, scenario: str, feature: str | None) -> bool:
    if scenario == "none":
        return verdict.level != "ok"
    if scenario == "concept shift":
        return any(f.detector == "decay" and f.level == "retrain" for f in verdict.findings)
    return any(feature and feature in f.reason for f in verdict.findings)


def change(
    scenario: str,
    weeks: list[pd.DataFrame],
    trial: int,
    profile: Profile,
    schema: Schema,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, str | None, list[pd.DataFrame] | None]:
    """The latest window with ``scenario``'s change, the feature changed, and the earlier
    windows when they change too (None: as they were)."""
    continuous = [
        f for f, d in profile.features.items() if d.kind == "numeric" and len(d.cuts) >= 10
    ]
    latest = weeks[-1]
    if scenario == "mean shift":
        feature = continuous[trial % len(continuous)]
        return shifted(latest, feature, profile.features[feature].sd or 0.0, rng), feature, None
    if scenario == "new category":
        categories = [f for f in schema.features if schema.columns[f].type == "category"]
        feature = categories[trial % len(categories)]
        return new_category(latest, feature, rng), feature, None
    if scenario == "unit change":
        floats = [f for f in continuous if schema.columns[f].type == "float"]
        feature = floats[trial % len(floats)]
        return latest.assign(**{feature: latest[feature] * 100}), feature, None
    if scenario == "concept shift":  # the labels of the last three windows
        swapped = [swap_labels(w, schema.target, rng) for w in weeks[-3:]]
        return swapped[-1], None, [*weeks[:-3], *swapped[:-1]]
    return latest, None, None


def main(trials: int, scenarios: tuple[str, ...] = SCENARIOS) -> None:
    settings = load_settings(ROOT / "params.yaml")
    schema = settings.data_schema
    lineage = read_json(ROOT / paths.LINEAGE)
    name = settings.model.name
    tag = f"{name}:{lineage['model_id'].removeprefix(name + '-')}"
    holdout = pd.read_parquet(ROOT / paths.HOLDOUT)
    holdout["_score"] = score(load_model(ROOT / paths.MODEL), holdout, schema)
    now = pd.Timestamp(lineage["data"]["train"]["time_max"], tz="UTC") + pd.Timedelta(days=35)
    hits = dict.fromkeys(scenarios, 0)
    findings: dict[str, dict[str, int]] = {s: {} for s in scenarios}
    measured, began = commit(), time.perf_counter()
    for trial in range(trials):
        rng = np.random.default_rng(trial)
        half = rng.permutation(len(holdout)) < len(holdout) // 2
        reference, live = holdout[half], holdout[~half]
        with tempfile.TemporaryDirectory(prefix="detection-") as tmp:
            folder = Path(tmp)
            reference_root(folder / "root", reference, settings, lineage)
            profile = reference_profile(folder / "root", settings, tag)
            assert profile is not None
            weeks = week_frames(live, rng)
            base = folder / "base.db"
            new_log(base)
            append_weeks(base, list(enumerate(weeks[:-1][::-1], start=1)), now, settings, tag, rng)
            for scenario in scenarios:
                log = folder / "log.db"
                shutil.copyfile(base, log)
                latest, feature, history = change(scenario, weeks, trial, profile, schema, rng)
                if history is not None:  # the labels of earlier windows changed too
                    log.unlink()
                    new_log(log)
                    append_weeks(
                        log, list(enumerate(history[::-1], start=1)), now, settings, tag, rng
                    )
                append_weeks(log, [(0, latest)], now, settings, tag, rng)
                verdict = check.run(
                    folder / "root",
                    settings,
                    f"sqlite:///{log}",
                    now.to_pydatetime(),
                    folder / "out",
                )
                hits[scenario] += detected(verdict, scenario, feature)
                if scenario == "none" and verdict.findings:
                    print(f"  false alarm: {verdict.reasons}", flush=True)
                for finding in verdict.findings:
                    counted = findings[scenario]
                    counted[finding.detector] = counted.get(finding.detector, 0) + 1
        print(f"trial {trial + 1}/{trials}: {time.perf_counter() - began:.0f} s", flush=True)
    write(measured, trials, hits, findings, time.perf_counter() - began)


def commit() -> str:
    """The commit measured (``+``: with uncommitted changes), taken as the run starts."""
    asked = ["git", "rev-parse", "--short", "HEAD"]
    head = subprocess.run(asked, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    head = head.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT, check=False).returncode
    return head + ("+" if dirty else "")


def interval(k: int, n: int) -> str:
    """Clopper-Pearson 95 %."""
    low = 0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1)
    high = 1.0 if k == n else beta.ppf(0.975, k + 1, n - k)
    return f"{low:.1%} to {high:.1%}"


def write(measured: str, trials: int, hits: dict, findings: dict, seconds: float) -> None:
    lines = [
        "# Detection table: every detector of `make monitor` together",
        "",
        f"`bench/detection.py` at {measured}, {trials} trials per scenario, "
        f"{seconds / 60:.1f} minutes. "
        "Each trial: the holdout split at random into a reference (lineage and profile) "
        "and live traffic; six weekly windows of the current model's prediction log "
        "(5,000 distinct rows each, the latest 30,000) of the live half, labels back "
        "after a gamma delay (mean 6 days), checked by `check.run` with params.yaml's "
        "settings. See the script's docstring for the changes.",
        "",
        "| scenario | rate | 95 % interval | target | findings (detector: trials) |",
        "|---|---:|---|---|---|",
    ]
    for scenario, hit in hits.items():
        target = "≤ 5 % (false alarms)" if scenario == "none" else "≥ 95 %"
        seen = ", ".join(f"{d}: {k}" for d, k in sorted(findings[scenario].items())) or "none"
        lines.append(
            f"| {scenario} | {hit / trials:.1%} ({hit}/{trials}) "
            f"| {interval(hit, trials)} | {target} | {seen} |"
        )
    text = "\n".join(lines) + "\n"
    if list(hits) == list(SCENARIOS):  # a partial run is printed, not saved
        RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    chosen = tuple(sys.argv[2:]) or SCENARIOS
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        sys.exit(f"unknown scenarios {sorted(unknown)}: choose from {SCENARIOS}")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else TRIALS, chosen)
