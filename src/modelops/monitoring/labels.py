"""Label maturity: how far the delayed labels of a window have come in.

Labels arrive late and at their own pace per class (a confirmed positive may take days
to months; a negative may be confirmed later still, or never). ``monitoring.labels.
unlabelled`` says which feedback the project gets:

- ``unknown`` (the default): both classes are reported, 0 and 1, as the service's
  /feedback takes them; an unlabelled prediction is not known yet and is left out, and
  a window is as complete as its slower class.
- ``negative``: only positives are reported (chargebacks, say); an unlabelled
  prediction counts as negative, and a window is as complete as its positives.

The arrival curve F(d), the share of eventual labels in by age d, is estimated from the
log itself: the delays (received_at - created_at) of the labels that came, corrected
for the labels that could not have come yet (a prediction of age a only shows delays
up to a). That is the product-limit estimator in reverse time for right-truncated data
(Lynden-Bell): F(d) = prod over delays d_j > d of (1 - n_j / R_j), n_j labels with
delay d_j, R_j those with delay <= d_j whose prediction is at least d_j old. When every
prediction is older than the longest delay it is the plain empirical CDF. It cannot know
delays longer than the log's oldest prediction: a log younger than the slowest labels
overstates completeness.

A window's expected completeness is the mean of F over its rows' ages. A window below
``min_maturity`` is shown provisionally, never judged: reweighting its labelled rows by
1 / F would assume that the labels that arrive early are like those that arrive late,
which fails exactly where it matters (the obvious positives are confirmed first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from modelops.config import LabelSettings
from modelops.serving.predlog import FEEDBACK, PREDICTIONS

SECONDS_PER_DAY = 86_400
OUTCOME_COLUMNS = (
    "request_id", "record_id", "created_at", "model_version", "route", "score", "decision",
)  # fmt: skip


def load_outcomes(
    engine: sa.Engine,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    *,
    fields: Sequence[str] = (),
) -> pd.DataFrame:
    """Predictions created in [start, end) with their labels (predictions LEFT JOIN
    feedback on request_id: shadow rows share their request's label). Columns:
    OUTCOME_COLUMNS, ``label`` (nan when none yet), ``received_at``, and each of
    ``fields`` read out of the inputs JSON (e.g. a cost column), never the whole JSON.
    Times are UTC."""
    extracted = [PREDICTIONS.c.inputs[name].as_float().label(name) for name in fields]
    query = (
        sa.select(
            *(PREDICTIONS.c[name] for name in OUTCOME_COLUMNS),
            FEEDBACK.c.label,
            FEEDBACK.c.received_at,
            *extracted,
        )
        .select_from(
            PREDICTIONS.outerjoin(FEEDBACK, FEEDBACK.c.request_id == PREDICTIONS.c.request_id)
        )
        .order_by(PREDICTIONS.c.created_at, PREDICTIONS.c.id)
    )
    if start is not None:
        query = query.where(PREDICTIONS.c.created_at >= start.to_pydatetime())
    if end is not None:
        query = query.where(PREDICTIONS.c.created_at < end.to_pydatetime())
    with engine.connect() as connection:
        frame = pd.read_sql(query, connection)
    for column in ("created_at", "received_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["label"] = frame["label"].astype(float)
    for name in fields:  # a field missing from every row reads as None
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return frame


def days(delta: pd.Series) -> np.ndarray:
    """Time differences in days (nan for NaT)."""
    return np.asarray(delta.dt.total_seconds().to_numpy(dtype=float) / SECONDS_PER_DAY)


def window_of(created_at: pd.Series, end: pd.Timestamp, window_days: int) -> pd.Series:
    """The start of each row's window: windows of ``window_days`` counted back from
    ``end`` (the check's time), so the latest window ends there."""
    back = np.ceil(days(end - created_at) / window_days) * window_days
    return pd.Series(end - pd.to_timedelta(back, unit="D"), index=created_at.index)


@dataclass(frozen=True)
class ArrivalCurve:
    """The share of eventual labels in by each delay (days), a right-continuous step."""

    delays: np.ndarray  # the observed distinct delays, ascending
    share: np.ndarray  # F at each of them
    labels: int  # labels it was estimated from

    def __call__(self, age_days: np.ndarray | float) -> np.ndarray:
        """F at each age (0 before the first delay; 0 everywhere without labels)."""
        if self.labels == 0:
            return np.zeros_like(np.asarray(age_days, dtype=float))
        at = np.searchsorted(self.delays, np.asarray(age_days, dtype=float), side="right")
        return np.asarray(np.concatenate([[0.0], self.share])[at])


def arrival_curve(created_at: pd.Series, received_at: pd.Series, now: pd.Timestamp) -> ArrivalCurve:
    """The label-arrival curve from predictions (``created_at``) and when their labels
    came (``received_at``, NaT for none yet), as of ``now``."""
    labelled = received_at.notna().to_numpy()
    delay = np.clip(days(received_at - created_at)[labelled], 0.0, None)
    reach = np.sort(days(now - created_at)[labelled])
    if delay.size == 0:
        return ArrivalCurve(np.zeros(0), np.zeros(0), 0)
    delays, events = np.unique(delay, return_counts=True)
    ordered = np.sort(delay)
    at_risk = np.searchsorted(ordered, delays, side="right") - np.searchsorted(
        reach, delays, side="left"
    )
    factor = 1 - events / at_risk
    # F(d_j) = product of the factors of the delays after d_j
    share = np.concatenate([np.cumprod(factor[::-1])[::-1][1:], [1.0]])
    return ArrivalCurve(delays, share, int(delay.size))


def arrival_curves(outcomes: pd.DataFrame, now: pd.Timestamp) -> dict[int, ArrivalCurve]:
    """The arrival curve of each class (1 and 0), one row per request (shadow rows share
    their request's label)."""
    answered = outcomes[outcomes["route"] != "shadow"].drop_duplicates("request_id")
    return {
        label: arrival_curve(part["created_at"], part["received_at"], now)
        for label in (1, 0)
        for part in [answered[answered["label"] == label]]
    }


def expected_completeness(
    created_at: pd.Series,
    now: pd.Timestamp,
    curves: dict[int, ArrivalCurve],
    settings: LabelSettings,
) -> np.ndarray:
    """Per row: the expected share of its class's eventual labels in by its age (the
    slower class when both are reported; the positives' when only they are)."""
    age = days(now - created_at)
    if settings.unlabelled == "negative":
        return curves[1](age)
    return np.asarray(np.minimum(curves[1](age), curves[0](age)))


def known_labels(outcomes: pd.DataFrame, settings: LabelSettings) -> pd.Series:
    """Each row's label as far as it is known: nan when unknown yet, or 0 for no label
    when only positives are reported."""
    if settings.unlabelled == "negative":
        return outcomes["label"].fillna(0.0)
    return outcomes["label"]


def window_maturity(
    outcomes: pd.DataFrame,
    window: str,
    now: pd.Timestamp,
    curves: dict[int, ArrivalCurve],
    settings: LabelSettings,
) -> pd.DataFrame:
    """Per window (column ``window``) of the answered requests (shadow rows left out):
    rows, labelled rows, labelled positives, the expected completeness (mean over its
    rows) and ``mature`` (completeness at least ``min_maturity``)."""
    answered = outcomes[outcomes["route"] != "shadow"]
    label = known_labels(answered, settings)
    table = pd.DataFrame(
        {
            window: answered[window],
            "rows": 1,
            "labelled": label.notna().astype(int),
            "positives": (label == 1).astype(int),
            "completeness": expected_completeness(answered["created_at"], now, curves, settings),
        }
    )
    summary = table.groupby(window, sort=True).agg(
        rows=("rows", "sum"),
        labelled=("labelled", "sum"),
        positives=("positives", "sum"),
        completeness=("completeness", "mean"),
    )
    summary["mature"] = summary["completeness"] >= settings.min_maturity
    return summary
