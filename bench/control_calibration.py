"""Control charts with nothing changed: how often a check alarms in its latest window,
with the textbook decision interval against spc.py's calibration.

Each simulated stream is a chart's window means: every window's sampling noise plus one
offset the windows share, the reference mean's own sampling error (SD = the per-row SD
over sqrt(reference rows)). The textbook chart uses Siegmund's h for an ARL of
``arl`` x charts and k = shift_sd / 2 (what spc.py did before); the calibrated chart is
``spc.control_charts`` as `make monitor` runs it. The budget per chart is
1 / (arl x charts): all charts together, one false alarm per ``arl`` checks. Writes
bench/results/control_calibration.md.

    .venv/bin/python bench/control_calibration.py [streams]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from modelops.config import ControlSettings
from modelops.monitoring.spc import InControl, control_charts, cusum, decision_interval

RESULTS = Path(__file__).resolve().parent / "results" / "control_calibration.md"
STREAMS = 400_000
CHARTS = 15  # the example's: positive rate, flag rate, mean score and 12 numeric features
CASES = {  # name: (rows per window, windows, reference rows)
    "example: 26 weeks of 30,000 rows, 360,000 training rows": (30_000, 26, 360_000),
    "6 windows of 5,000 rows, 60,000 reference rows": (5_000, 6, 60_000),
    "small adoption: 26 windows of 200 rows, 1,000 reference rows": (200, 26, 1_000),
    "reference known exactly: 26 windows of 30,000 rows": (30_000, 26, None),
}


def latest_alarms(z: np.ndarray, k: float, h: float) -> float:
    """The share of streams (rows of z) whose chart alarms in the last window."""
    upper, lower = cusum(z, k)
    return float(((upper[:, -1] > h) | (lower[:, -1] > h)).mean())


def case(rows: int, windows: int, reference: int | None, streams: int, seed: int) -> dict:
    settings = ControlSettings()
    reference_se = 0.0 if reference is None else 1 / np.sqrt(reference)
    expected = InControl(0.0, 1.0, reference_se=reference_se)
    counts = np.full(windows, float(rows))
    rng = np.random.default_rng(seed)
    offset = rng.standard_normal((streams, 1)) * reference_se
    means = offset + rng.standard_normal((streams, windows)) / np.sqrt(rows)
    z = expected.standardise(means, counts)
    textbook_k = settings.shift_sd / 2
    textbook_h = decision_interval(settings.arl * CHARTS, textbook_k)
    columns = [str(i) for i in range(CHARTS)]
    frame = pd.DataFrame(np.zeros((windows, CHARTS)), columns=columns)
    sizes = pd.DataFrame(dict.fromkeys(columns, counts))
    chart = control_charts(frame, sizes, dict.fromkeys(columns, expected), settings)["0"]
    return {
        "textbook": latest_alarms(z, textbook_k, textbook_h),
        "textbook_kh": (textbook_k, textbook_h),
        "calibrated": latest_alarms(z, chart.k, chart.h),
        "calibrated_kh": (chart.k, chart.h),
    }


def main(streams: int) -> None:
    began = time.perf_counter()
    budget = 1 / (ControlSettings().arl * CHARTS)
    lines = [
        "# Control charts with nothing changed: false alarms per check",
        "",
        f"`bench/control_calibration.py`: {streams:,} simulated streams per case, one chart "
        f"of {CHARTS} sharing `control.arl` {ControlSettings().arl:g}; its budget is "
        f"{budget:.4%} of checks. Each window's mean has sampling noise and an offset all "
        "windows share (the reference mean's own error).",
        "",
        "| case | textbook k, h | alarms in the latest window | calibrated k, h (spc.py) "
        "| alarms in the latest window |",
        "|---|---|---:|---|---:|",
    ]
    for seed, (name, (rows, windows, reference)) in enumerate(CASES.items()):
        found = case(rows, windows, reference, streams, seed)
        lines.append(
            f"| {name} | {found['textbook_kh'][0]:.2f}, {found['textbook_kh'][1]:.2f} "
            f"| {found['textbook']:.4%} | {found['calibrated_kh'][0]:.2f}, "
            f"{found['calibrated_kh'][1]:.2f} | {found['calibrated']:.4%} |"
        )
    lines += ["", f"{time.perf_counter() - began:.0f} s in all."]
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else STREAMS)
