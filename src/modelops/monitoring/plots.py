"""The monitoring report's figures: each feature's drift effect with its interval against
the minimum worth an alarm, and each control chart's CUSUM sums against its limit."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from modelops.io import atomic_path
from modelops.monitoring.drift import DriftResult
from modelops.monitoring.spc import Chart

DRIFTED, QUIET, LIMIT = "#cf222e", "#0969da", "#6e7781"


def drift_png(result: DriftResult, target: Path) -> Path:
    """One row per feature: the effect estimate with its interval, as a multiple of its
    minimum (1 = the smallest effect worth an alarm), drifted features in red."""
    shown = [f for f in result.features if f.effect is not None and f.effect.minimum > 0]
    fig, axis = plt.subplots(figsize=(7, 0.35 * len(shown) + 1.2), dpi=100)
    for row, item in enumerate(shown):
        effect = item.effect
        assert effect is not None  # filtered above
        low, mid, high = (v / effect.minimum for v in (effect.low, effect.estimate, effect.high))
        color = DRIFTED if item.drifted else QUIET
        axis.plot([low, high], [row, row], color=color, linewidth=2)
        axis.plot(mid, row, "o", color=color)
    axis.axvline(1.0, color=LIMIT, linestyle="--", linewidth=1)
    axis.set_yticks(range(len(shown)), [f.feature for f in shown])
    axis.set_xscale("symlog", linthresh=1)
    axis.set_xlim(left=0)
    axis.set_xlabel("effect / its minimum (dashed: 1, the smallest worth an alarm)")
    axis.grid(alpha=0.3)
    return _save(fig, target)


def charts_png(charts: Mapping[str, Chart], target: Path) -> Path:
    """One panel per chart: the upper and lower CUSUM sums per window and the limit h."""
    fig, axes = plt.subplots(
        len(charts), 1, figsize=(7, 1.4 * len(charts) + 0.6), dpi=100, sharex=True, squeeze=False
    )
    for axis, (name, chart) in zip(axes[:, 0], charts.items(), strict=True):
        x = np.arange(len(chart.windows))
        axis.plot(x, chart.upper, color=QUIET, label="upper")
        axis.plot(x, chart.lower, color=DRIFTED, label="lower")
        axis.axhline(chart.h, color=LIMIT, linestyle="--", linewidth=1)
        axis.set_ylabel(name, rotation=0, ha="right", fontsize=8)
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xticks(
        range(len(next(iter(charts.values())).windows)),
        [f"{w:%m-%d}" for w in next(iter(charts.values())).windows],
        rotation=90,
        fontsize=7,
    )
    axes[0, 0].legend(fontsize=7, loc="upper left")
    return _save(fig, target)


def _save(fig: Figure, target: Path) -> Path:
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return target
