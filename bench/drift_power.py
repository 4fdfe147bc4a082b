"""Drift detection power and false alarms, over reseeded trials with a week-sized window.

Each trial splits data/validated.parquet's rows at random into a reference (the size of
data/train.parquet, profiled as the `profile` stage does) and a disjoint window of
WINDOW rows: both are samples of the same population, so without a change nothing
should alarm. The same window is then changed four ways and judged with the
settings of params.yaml (``monitoring.drift``):

- none: unchanged (false alarm: any feature drifts);
- mean shift: one numeric feature moved by 0.1 of its SD (integers stochastically
  rounded, so the mean moves exactly that), the feature cycling over trials;
- new category: 1 % of rows take a level the schema lacks, cycling over category features;
- unit change: one float feature multiplied by 100 (dollars to cents), cycling.

Detection counts only the changed feature drifting. Writes bench/results/drift_power.md.

    .venv/bin/python bench/drift_power.py [trials]
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from modelops import paths
from modelops.config import load_settings
from modelops.monitoring.counts import frame_counts
from modelops.monitoring.drift import compare
from modelops.monitoring.profile import build_profile
from modelops.schema import ColumnType

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "drift_power.md"
TRIALS = 200
WINDOW = 30_000  # a week of the example's traffic
SHIFT_SD = 0.1
NEW_SHARE = 0.01
UNIT = 100.0


def shifted(window: pd.DataFrame, name: str, sd: float, rng: np.random.Generator) -> pd.DataFrame:
    values = window[name].to_numpy(dtype=float) + SHIFT_SD * sd
    if window[name].dtype.kind == "i":
        values = np.floor(values + rng.random(len(values)))
    return window.assign(**{name: values})


def new_category(window: pd.DataFrame, name: str, rng: np.random.Generator) -> pd.DataFrame:
    changed = window.copy()
    rows = rng.choice(len(window), int(NEW_SHARE * len(window)), replace=False)
    changed.loc[changed.index[rows], name] = "never-seen-level"
    return changed


def main(trials: int) -> None:
    settings = load_settings(ROOT / "params.yaml")
    schema, drift = settings.data_schema, settings.monitoring.drift
    fdr = settings.monitoring.test_alpha
    rows = pd.read_parquet(ROOT / paths.VALIDATED, columns=schema.features)
    reference_rows = len(pd.read_parquet(ROOT / paths.TRAIN, columns=schema.features[:1]))
    numeric = [
        f for f in schema.features if schema.columns[f].type in (ColumnType.INT, ColumnType.FLOAT)
    ]
    floats = [f for f in numeric if schema.columns[f].type == ColumnType.FLOAT]
    categories = schema.categorical_features
    detected: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    extra: dict[str, list[int]] = defaultdict(list)  # other features drifting too
    sizes: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    scores = pd.Series(np.zeros(10))
    started = time.perf_counter()
    for trial in range(trials):
        rng = np.random.default_rng(trial)
        order = rng.permutation(len(rows))
        reference = rows.iloc[order[:reference_rows]]
        window = rows.iloc[order[reference_rows : reference_rows + WINDOW]]
        profile = build_profile(reference, scores, schema, drift.bins, (0.5, 0.9))
        scenarios = {
            "none": ("", window),
            "mean shift": (
                (name := numeric[trial % len(numeric)]),
                shifted(window, name, profile.features[name].sd or 0.0, rng),
            ),
            "new category": (
                (name := categories[trial % len(categories)]),
                new_category(window, name, rng),
            ),
            "unit change": (
                (name := floats[trial % len(floats)]),
                window.assign(**{name: window[name] * UNIT}),
            ),
        }
        for scenario, (feature, changed) in scenarios.items():
            result = compare(profile, frame_counts(changed, profile), drift, fdr)
            drifted = result.drifted
            hit = bool(drifted) if scenario == "none" else feature in drifted
            for found in result.features:
                if found.feature == feature and found.effect is not None:
                    sizes[scenario][feature].append(found.effect.estimate)
            detected[scenario][feature].append(hit)
            extra[scenario].append(len([f for f in drifted if f != feature]))
    elapsed = time.perf_counter() - started
    RESULTS.write_text(report(detected, extra, sizes, trials, reference_rows, drift, fdr, elapsed))
    print(RESULTS.read_text())


def rate(hits: list[bool]) -> str:
    return f"{np.mean(hits):.1%} ({sum(hits)}/{len(hits)})"


def report(detected, extra, sizes, trials, reference_rows, drift, fdr, elapsed) -> str:  # type: ignore[no-untyped-def]
    targets = {
        "none": "≤ 5 %",
        "mean shift": "≥ 95 %",
        "new category": "≥ 95 %",
        "unit change": "≥ 95 %",
    }
    lines = [
        "# Drift detection: power and false alarms",
        "",
        f"`bench/drift_power.py`: {trials} trials; each a random split of data/validated.parquet "
        f"into a {reference_rows:,}-row reference and a disjoint {WINDOW:,}-row window (a week), "
        f"with params.yaml's `monitoring.drift` (bins {drift.bins}, fdr {fdr:.3g}, "
        f"min_effect {drift.min_effect} SD, min_effect_category {drift.min_effect_category}, "
        f"interval {drift.confidence:.0%}); {elapsed:.0f} s in all.",
        "",
        "| scenario | rate (the changed feature drifts; none: any) | target | others flagged |",
        "|---|---:|---|---:|",
    ]
    for scenario, by_feature in detected.items():
        hits = [h for values in by_feature.values() for h in values]
        label = "false alarm, no change" if scenario == "none" else scenario
        others = np.mean(np.asarray(extra[scenario]) > 0)
        lines.append(f"| {label} | {rate(hits)} | {targets[scenario]} | {others:.1%} of trials |")
    lines += [
        "",
        "Per feature, with the median effect estimated (mean shift and unit change: "
        "Wasserstein-1 in reference SDs; new category: total variation):",
        "",
        "| scenario | feature | detected | median effect |",
        "|---|---|---:|---:|",
    ]
    for scenario, by_feature in detected.items():
        if scenario == "none":
            continue
        for feature, hits in by_feature.items():
            effect = np.median(sizes[scenario][feature])
            lines.append(f"| {scenario} | {feature} | {rate(hits)} | {effect:.4g} |")
    return "\n".join(lines) + NOTES


NOTES = """
How the rule got here (pilots of 6 to 28 trials with this script, same settings):

- Judging the effect by its interval's lower bound, rather than by the bias-corrected
  estimate, detected a 1 % new category in 3 of 6 trials: total variation sums absolute
  differences of noisy shares, and the basic interval's lower bound sits about two
  standard errors plus that bias below the estimate. The test (chi-square, BH) already
  shows the change is real; the effect only has to show it is not negligible.
- A Wasserstein-1 distance on the bins' lower edges, instead of their means, found none
  of the 0.1-SD shifts of distance_from_home_km (0 of 2): its top bin spans the heavy
  tail, so a shift that pushes rows past the last cut point was capped there. With the
  bins' means (sums kept in the profile and the counts) the estimates above are close
  to the true 0.1 SD; the heavy-tailed distance reads high (0.14) because its top
  bin's mean moves with the rows that enter it.
- The false-alarm rate is BH's at `fdr` (data drift's share of
  `monitoring.false_alarm_rate`) across the 11 features when nothing
  changed (any alarm in a window), lowered further by the effect minimums.
"""


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else TRIALS)
