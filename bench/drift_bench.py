"""Drift speed and memory: ours (profile, counts, tests) against Evidently's data-drift
preset on the same 1,000,000 reference and 1,000,000 current rows of the example's
features, and ours from a SQLite prediction log holding the current rows.

Reference rows are resampled from data/train.parquet, current rows from
data/holdout.parquet (later weeks: some real drift). Each contender runs in its own
subprocess, one after the other, so its peak memory (ru_maxrss) is its own; wall time
is measured inside. Writes bench/results/drift.md (and drift.json).

    .tools/bin/uv run --group bench python bench/drift_bench.py
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelops import paths
from modelops.config import load_settings
from modelops.monitoring.counts import Window, frame_counts, log_counts
from modelops.monitoring.drift import compare
from modelops.monitoring.profile import Profile, build_profile
from modelops.serving.predlog import PredictionLog

ROWS = 1_000_000
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
LOG_CHUNK = 50_000


def rss_mb() -> float:
    """This process's peak resident memory so far, MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_data(folder: Path) -> None:
    """1M reference and 1M current rows of the features, as parquet files."""
    settings = load_settings(ROOT / "params.yaml")
    features = settings.data_schema.features
    rng = np.random.default_rng(0)
    for name, source in (("reference", paths.TRAIN), ("current", paths.HOLDOUT)):
        rows = pd.read_parquet(ROOT / source, columns=features)
        rows.iloc[rng.integers(0, len(rows), ROWS)].reset_index(drop=True).to_parquet(
            folder / f"{name}.parquet"
        )


def make_log(folder: Path) -> str:
    """A SQLite prediction log of the current rows, written by the real PredictionLog."""
    url = f"sqlite:///{folder / 'predictions.db'}"
    current = pd.read_parquet(folder / "current.parquet")
    records = current.astype(object).where(current.notna(), None).to_dict("records")
    log = PredictionLog(url, flush_interval_s=3600, max_buffer=LOG_CHUNK + 1)
    step = dt.timedelta(days=7) / ROWS
    for chunk in range(0, ROWS, LOG_CHUNK):
        log.record(
            [
                {
                    "request_id": uuid.uuid4().hex,
                    "record_id": str(i),
                    "entity_id": None,
                    "created_at": START + i * step,
                    "model_version": "m:1",
                    "route": "champion",
                    "automation": "partial",
                    "score": 0.01,
                    "decision": "approve",
                    "latency_ms": 1.0,
                    "inputs": records[i],
                    "reasons": [],
                }
                for i in range(chunk, min(chunk + LOG_CHUNK, ROWS))
            ]
        )
        assert log.flush()
    log.engine.dispose()
    return url


def run_ours(folder: Path) -> dict[str, Any]:
    settings = load_settings(ROOT / "params.yaml")
    reference = pd.read_parquet(folder / "reference.parquet")
    current = pd.read_parquet(folder / "current.parquet")
    scores = pd.Series(np.random.default_rng(1).beta(1, 30, 120_000))
    loaded = rss_mb()
    start = time.perf_counter()
    profile = build_profile(
        reference, scores, settings.data_schema, settings.monitoring.drift.bins, (0.1, 0.9)
    )
    profiled = time.perf_counter()
    counts = frame_counts(current, profile)
    counted = time.perf_counter()
    result = compare(profile, counts, settings.monitoring.drift)
    done = time.perf_counter()
    profile.save(folder / "profile.json")
    return {
        "seconds": done - start,
        "profile_s": profiled - start,
        "counts_s": counted - profiled,
        "tests_s": done - counted,
        "peak_mb": rss_mb(),
        "loaded_mb": loaded,
        "drifted": result.drifted,
    }


def run_evidently(folder: Path) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    schema = load_settings(ROOT / "params.yaml").data_schema
    reference = pd.read_parquet(folder / "reference.parquet")
    current = pd.read_parquet(folder / "current.parquet")
    categorical = schema.categorical_features + [
        f for f in schema.features if schema.columns[f].type == "bool"
    ]
    numerical = [f for f in schema.features if f not in categorical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    loaded = rss_mb()
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    done = time.perf_counter()
    values = snapshot.dict()["metrics"]
    return {
        "seconds": done - start,
        "peak_mb": rss_mb(),
        "loaded_mb": loaded,
        "drifted_share": values[0]["value"]["share"],
    }


def run_log(folder: Path) -> dict[str, Any]:
    import sqlalchemy as sa

    url = f"sqlite:///{folder / 'predictions.db'}"
    profile = Profile.load(folder / "profile.json")
    settings = load_settings(ROOT / "params.yaml")
    engine = sa.create_engine(url)
    loaded = rss_mb()
    start = time.perf_counter()
    counts = log_counts(engine, profile, Window(START, START + dt.timedelta(days=7)))
    counted = time.perf_counter()
    result = compare(profile, counts, settings.monitoring.drift)
    done = time.perf_counter()
    engine.dispose()
    expected = frame_counts(pd.read_parquet(folder / "current.parquet"), profile)
    return {
        "seconds": done - start,
        "counts_s": counted - start,
        "rows": counts.rows,
        "rows_per_s": counts.rows / (counted - start),
        "peak_mb": rss_mb(),
        "loaded_mb": loaded,
        "same_counts_as_frame": counts == expected,
        "drifted": result.drifted,
    }


CONTENDERS = {"ours": run_ours, "evidently": run_evidently, "ours_from_log": run_log}


def child(name: str, folder: str) -> None:
    print(json.dumps(CONTENDERS[name](Path(folder))))


def measure(name: str, folder: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, name, str(folder)], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print(name, result, flush=True)
    return result


def report(results: dict[str, dict[str, Any]], log_write_s: float, db_mb: float) -> str:
    ours, evidently, log = results["ours"], results["evidently"], results["ours_from_log"]
    speedup = evidently["seconds"] / ours["seconds"]

    def growth(r: dict[str, Any]) -> float:
        return float(r["peak_mb"] - r["loaded_mb"])

    return f"""# Drift check: ours against Evidently

`bench/drift_bench.py`: {ROWS:,} reference rows (resampled from data/train.parquet) and
{ROWS:,} current rows (resampled from data/holdout.parquet, later weeks), the example's
{len(load_settings(ROOT / "params.yaml").data_schema.features)} features. Each contender in
its own subprocess; wall time excludes reading the parquet files; memory is the process's
peak RSS and its growth over the loaded data.

| | wall time | peak RSS | growth over loaded data | drifted |
|---|---:|---:|---:|---|
| ours (profile + counts + tests) | {ours["seconds"]:.2f} s | {ours["peak_mb"]:.0f} MB | \
{growth(ours):.0f} MB | {", ".join(ours["drifted"]) or "none"} |
| Evidently {_evidently_version()} DataDriftPreset | {evidently["seconds"]:.2f} s | \
{evidently["peak_mb"]:.0f} MB | {growth(evidently):.0f} MB | \
{evidently["drifted_share"]:.0%} of columns |
| ours from the SQLite log (counts + tests) | {log["seconds"]:.2f} s | {log["peak_mb"]:.0f} MB | \
{growth(log):.0f} MB | {", ".join(log["drifted"]) or "none"} |

- **Ours is {speedup:.0f}x faster than Evidently** (target: at least 20x). Ours split:
  profile {ours["profile_s"]:.2f} s (once per model version, in the `profile` stage),
  window counts {ours["counts_s"]:.2f} s, tests with bootstrap intervals {ours["tests_s"]:.2f} s.
- **From the database**: {log["rows"]:,} logged rows binned by SQLite in
  {log["counts_s"]:.1f} s, {log["rows_per_s"]:,.0f} rows/s, one GROUP BY per feature; the
  counts equal the DataFrame path's: {log["same_counts_as_frame"]}. Memory stays flat
  whatever the window (only counts leave the database). The time grows linearly with
  rows x features: a week at {log["rows_per_s"] * 3600:,.0f} rows per hour of checking; a
  window of 10M rows would take ~{10_000_000 / log["rows_per_s"] / 60:.0f} min on SQLite, the
  point to move the log to PostgreSQL (parallel scans) or to count per day incrementally.
- Writing the 1M-row log with the real PredictionLog took {log_write_s:.0f} s
  ({ROWS / log_write_s:,.0f} rows/s); the file is {db_mb:.0f} MB.
- Evidently's verdict differs by design: per-column tests (Wasserstein/Jensen-Shannon
  distances on this size) with a fixed threshold and no correction across columns.
"""


def _evidently_version() -> str:
    from importlib.metadata import version

    return version("evidently")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as name:
        folder = Path(name)
        make_data(folder)
        started = time.perf_counter()
        make_log(folder)
        log_write_s = time.perf_counter() - started
        db_mb = (folder / "predictions.db").stat().st_size / 1e6
        results = {n: measure(n, folder) for n in CONTENDERS}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "drift.json").write_text(json.dumps(results, indent=2) + "\n")
    text = report(results, log_write_s, db_mb)
    (RESULTS / "drift.md").write_text(text)
    print(text)


if __name__ == "__main__":
    if len(sys.argv) == 3:
        child(sys.argv[1], sys.argv[2])
    else:
        main()
