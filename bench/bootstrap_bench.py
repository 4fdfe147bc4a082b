"""Bootstrap speed: our vectorized resampling (metrics.bootstrap) against the plain way,
one scikit-learn call per resample and metric, on the same holdout-sized data.

Both run side by side in one process, so the ratio is what matters on a noisy machine.
The plain way is timed on fewer resamples and scaled per resample. Writes
bench/results/bootstrap.md.

    .venv/bin/python bench/bootstrap_bench.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn import metrics as sk

from modelops.training.metrics import Holdout, Scored, bootstrap

ROWS = 120_000  # the default holdout
MODELS = 3  # model + two baselines, as in the evaluate stage
FAST_RESAMPLES = 1000
SLOW_RESAMPLES = 20
RESULTS = Path(__file__).resolve().parent / "results" / "bootstrap.md"


def data(seed: int = 0) -> tuple[Holdout, dict[str, Scored]]:
    rng = np.random.default_rng(seed)
    y = (rng.random(ROWS) < 0.012).astype(float)
    holdout = Holdout(
        y=y,
        missed_cost=rng.lognormal(3.5, 1.0, ROWS),
        false_alarm_cost=np.zeros(ROWS),
        action_cost=5.0,
    )
    models = {}
    for m in range(MODELS):
        score = 1 / (1 + np.exp(-(rng.normal(-4.5, 1.0, ROWS) + (1.5 + m) * y)))
        models[f"m{m}"] = Scored.at_review_rate(score, 0.02)
    return holdout, models


def plain(holdout: Holdout, models: dict[str, Scored], resamples: int) -> None:
    """The same seven metrics with scikit-learn, one call per resample and metric."""
    rng = np.random.default_rng(1)
    for _ in range(resamples):
        idx = rng.integers(0, ROWS, ROWS)
        y, amount = holdout.y[idx], holdout.missed_cost[idx]
        for s in models.values():
            score = s.score[idx]
            flag = s.flagged[idx]
            sk.roc_auc_score(y, score)
            sk.average_precision_score(y, score)
            sk.recall_score(y, flag)
            sk.precision_score(y, flag, zero_division=0)
            sk.log_loss(y, score)
            sk.brier_score_loss(y, score)
            _ = 1000 * np.mean(y * ~flag * amount + flag * holdout.action_cost)


def main() -> None:
    holdout, models = data()
    started = time.perf_counter()
    bootstrap(holdout, models, n_resamples=FAST_RESAMPLES, confidence=0.95, seed=0)
    fast = (time.perf_counter() - started) / FAST_RESAMPLES
    started = time.perf_counter()
    plain(holdout, models, SLOW_RESAMPLES)
    slow = (time.perf_counter() - started) / SLOW_RESAMPLES
    text = f"""# Bootstrap speed

Command: `.venv/bin/python bench/bootstrap_bench.py`. {ROWS:,} holdout rows, {MODELS} models,
7 metrics per model and resample (ROC-AUC, average precision, recall, precision,
log loss, Brier, cost), as in the evaluate stage.

| method | per resample | 1,000 resamples |
|---|---:|---:|
| `metrics.bootstrap` (vectorized, shared resamples) | {fast * 1000:.1f} ms | {fast * 1000:.1f} s |
| scikit-learn per resample ({SLOW_RESAMPLES} timed) | {slow * 1000:.1f} ms | {slow * 1000:.1f} s |

Ratio: the vectorized bootstrap is {slow / fast:.1f}x faster.
"""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
