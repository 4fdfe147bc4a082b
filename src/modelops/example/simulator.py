"""Seeded simulator of weekly card transactions with drifting fraud tactics.

Each fraud row is drawn from one of four tactics; every tactic alters a few features,
each with probability ``signal_strength``, so fraud overlaps legitimate traffic. The
tactic mix moves week by week (``concept_drift``: what makes a transaction fraudulent
shifts) and the population moves too (``data_drift``: more online, higher amounts).
Two sudden events can be set: a new tactic (``new_tactic``: contactless relay fraud,
in-person and daytime, that looks unlike every earlier tactic) and an upstream change
(``upstream_change``: a field in other units, renamed categories), each from a week on.
Week ``w`` depends only on (seed, w), so appending a week never changes earlier ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelops.config import SimulatorSettings

CATEGORIES = (
    "grocery", "restaurants", "fuel", "fashion", "health",
    "travel", "electronics", "jewelry", "gaming", "digital_goods",
)  # fmt: skip
CATEGORY_SHARE = (0.24, 0.18, 0.12, 0.10, 0.08, 0.07, 0.07, 0.03, 0.05, 0.06)
CATEGORY_AMOUNT = (1.0, 0.8, 1.0, 1.4, 1.1, 4.0, 3.0, 5.0, 0.6, 0.4)
CHANNELS = ("pos", "contactless", "online")
HOME_COUNTRY = "US"
COUNTRIES = (HOME_COUNTRY, "CA", "MX", "GB", "DE", "FR", "BR", "IN")
TACTICS = ("card_testing", "account_takeover", "skimming", "bust_out", "relay")
# Tactic log-odds at week 0 and their change per week (times concept_drift):
# card testing fades, bust-out emerges late, as fraud rings move on.
TACTIC_BASE = np.array([1.5, 0.5, 0.0, -3.0])
TACTIC_SLOPE = np.array([-1.0, 0.3, 0.0, 1.5])
_HOURLY = np.array([1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 10, 11, 10, 9, 9, 10, 11, 11, 10, 8, 6, 4, 2])
HOURLY_SHARE = _HOURLY / _HOURLY.sum()


def tactic_mix(settings: SimulatorSettings, week: int) -> np.ndarray:
    """Probability of each tactic among detectable fraud in a given week: the drifting
    four, and from ``new_tactic.week`` on the new one (its ``share``)."""
    logits = TACTIC_BASE + settings.concept_drift * week * TACTIC_SLOPE
    weights = np.exp(logits - logits.max())
    mix = np.asarray(weights / weights.sum())
    new = settings.new_tactic
    if new.week is not None and week >= new.week:
        return np.append(mix * (1 - new.share), new.share)
    return mix


class _Pools:
    """Cards and merchants shared by all weeks (depend on the seed only)."""

    def __init__(self, settings: SimulatorSettings) -> None:
        rng = np.random.default_rng([settings.seed, 0])
        self.card_typical_amount = rng.lognormal(np.log(45.0), 0.6, settings.n_cards)
        self.card_age_at_start = rng.integers(60, 3000, settings.n_cards)
        self.merchant_category = rng.choice(len(CATEGORIES), settings.n_merchants, p=CATEGORY_SHARE)
        self.merchants_by_category = [
            np.flatnonzero(self.merchant_category == c) for c in range(len(CATEGORIES))
        ]
        foreign = rng.random(settings.n_merchants) < 0.08
        self.merchant_country = np.where(
            foreign, rng.integers(1, len(COUNTRIES), settings.n_merchants), 0
        )


def simulate_week(settings: SimulatorSettings, week: int) -> pd.DataFrame:
    """Transactions of one week (0-based index from ``start_date``), in time order."""
    pools = _Pools(settings)
    rng = np.random.default_rng([settings.seed, 1, week])
    n = settings.transactions_per_week
    drift = settings.data_drift * week

    online_share = min(0.3 * (1 + drift), 0.8)
    contactless_share = min(0.25 * (1 + drift), 0.9 - online_share)
    channel = rng.choice(
        len(CHANNELS), n, p=[1 - online_share - contactless_share, contactless_share, online_share]
    )
    card = rng.integers(0, settings.n_cards, n)
    merchant = rng.integers(0, settings.n_merchants, n)
    category = pools.merchant_category[merchant]
    country = pools.merchant_country[merchant]
    typical = pools.card_typical_amount[card]
    amount = (
        typical
        * np.asarray(CATEGORY_AMOUNT)[category]
        * rng.lognormal(0.0, 0.7, n)
        * (1 + drift / 2)
    )
    day = rng.integers(0, 7, n)
    hour = rng.choice(24, n, p=HOURLY_SHARE)
    second = rng.integers(0, 3600, n)
    txn_1h = rng.poisson(0.4, n)
    txn_24h = txn_1h + rng.poisson(3.0, n)
    new_device = rng.random(n) < np.where(channel == 2, 0.06, 0.02)
    card_age = pools.card_age_at_start[card] + 7 * week + day
    is_fraud = rng.random(n) < settings.fraud_rate

    frame = {
        "channel": channel, "category": category, "country": country, "amount": amount,
        "hour": hour, "txn_1h": txn_1h, "txn_24h": txn_24h, "new_device": new_device,
        "card_age": card_age, "merchant": merchant,
    }  # fmt: skip
    fraud_rows = np.flatnonzero(is_fraud)
    detectable = fraud_rows[rng.random(fraud_rows.size) >= settings.undetectable_share]
    mix = tactic_mix(settings, week)
    tactic = rng.choice(len(mix), detectable.size, p=mix)
    for t in range(len(mix)):
        _apply_tactic(frame, detectable[tactic == t], TACTICS[t], settings, rng, pools)

    channel, country, amount = frame["channel"], frame["country"], frame["amount"]
    in_person = channel != 2
    distance = np.where(country != 0, 800 + rng.exponential(3000, n), rng.exponential(12, n))
    start = pd.Timestamp(settings.start_date) + pd.Timedelta(weeks=week)
    timestamp = (
        start
        + pd.to_timedelta(day, unit="D")
        + pd.to_timedelta(frame["hour"], unit="h")
        + pd.to_timedelta(second, unit="s")
    )
    amount = np.maximum(np.round(amount, 2), 0.5)
    data = pd.DataFrame(
        {
            "timestamp": timestamp,
            "card_id": [f"C{c:07d}" for c in card],
            "merchant_id": [f"M{m:05d}" for m in frame["merchant"]],
            "amount": amount,
            "merchant_category": np.asarray(CATEGORIES, dtype=object)[frame["category"]],
            "channel": np.asarray(CHANNELS, dtype=object)[channel],
            "country": np.asarray(COUNTRIES, dtype=object)[country],
            "local_hour": frame["hour"].astype("int64"),
            "card_age_days": frame["card_age"].astype("int64"),
            "txn_count_1h": frame["txn_1h"].astype("int64"),
            "txn_count_24h": np.maximum(frame["txn_24h"], frame["txn_1h"]).astype("int64"),
            "amount_to_avg_ratio": np.round(amount / typical, 3),
            "distance_from_home_km": np.where(in_person, np.round(distance, 1), np.nan),
            "new_device": frame["new_device"].astype(bool),
            "is_fraud": is_fraud.astype("int64"),
        }
    )
    data = data.sort_values("timestamp", kind="stable").reset_index(drop=True)
    data.insert(0, "transaction_id", [f"T{week:04d}{i:07d}" for i in range(n)])
    return _upstream(settings, week, data)


def _upstream(settings: SimulatorSettings, week: int, data: pd.DataFrame) -> pd.DataFrame:
    """The week as an upstream system sends it after ``upstream_change.week``."""
    change = settings.upstream_change
    if change.week is None or week < change.week:
        return data
    for field, edits in (("scale", change.scale), ("rename", change.rename)):
        for column in edits:
            if column not in data:
                raise ValueError(f"simulator.upstream_change.{field}: no column '{column}'")
    for column, factor in change.scale.items():
        data[column] = data[column] * factor
    for column, names in change.rename.items():
        data[column] = data[column].replace(names)
    return data


def _apply_tactic(
    frame: dict[str, np.ndarray],
    rows: np.ndarray,
    tactic: str,
    settings: SimulatorSettings,
    rng: np.random.Generator,
    pools: _Pools,
) -> None:
    """Give ``rows`` the tell-tale signs of ``tactic``, each sign with probability strength."""

    def some() -> np.ndarray:
        return rows[rng.random(rows.size) < settings.signal_strength]

    def set_category(target: np.ndarray, choices: list[int]) -> None:
        _move_to_categories(frame, target, choices, rng, pools)

    cat = {name: i for i, name in enumerate(CATEGORIES)}
    if tactic == "card_testing":
        frame["channel"][some()] = 2
        set_category(some(), [cat["digital_goods"], cat["gaming"]])
        small = some()
        frame["amount"][small] = rng.uniform(0.5, 6.0, small.size)
        burst = some()
        frame["txn_1h"][burst] = 3 + rng.poisson(3.0, burst.size)
        frame["new_device"][some()] = True
    elif tactic == "account_takeover":
        frame["new_device"][some()] = True
        night = some()
        frame["hour"][night] = rng.integers(0, 6, night.size)
        big = some()
        frame["amount"][big] *= rng.lognormal(1.3, 0.4, big.size)
        frame["channel"][some()] = 2
        spree = some()
        frame["txn_24h"][spree] += rng.poisson(6.0, spree.size)
    elif tactic == "skimming":
        frame["channel"][some()] = 0
        abroad = some()
        frame["country"][abroad] = rng.integers(1, len(COUNTRIES), abroad.size)
        big = some()
        frame["amount"][big] *= rng.lognormal(0.8, 0.4, big.size)
        set_category(some(), [cat["electronics"], cat["jewelry"], cat["fuel"]])
        late = some()
        frame["hour"][late] = rng.integers(20, 24, late.size)
    elif tactic == "bust_out":
        young = some()
        frame["card_age"][young] = rng.integers(1, 90, young.size)
        set_category(some(), [cat["electronics"], cat["jewelry"], cat["travel"]])
        big = some()
        frame["amount"][big] *= rng.lognormal(1.5, 0.5, big.size)
        spree = some()
        frame["txn_24h"][spree] += 4 + rng.poisson(4.0, spree.size)
    elif tactic == "relay":  # in person, by day, at everyday merchants: unlike the others
        frame["channel"][some()] = 1
        set_category(some(), [cat["grocery"], cat["fuel"], cat["restaurants"]])
        day = some()
        frame["hour"][day] = rng.integers(10, 18, day.size)
        big = some()
        frame["amount"][big] *= rng.lognormal(1.0, 0.3, big.size)
        repeat = some()
        frame["txn_1h"][repeat] += 1 + rng.poisson(1.0, repeat.size)


def _move_to_categories(
    frame: dict[str, np.ndarray],
    target: np.ndarray,
    choices: list[int],
    rng: np.random.Generator,
    pools: _Pools,
) -> None:
    """Give ``target`` rows one of the ``choices`` categories, and a merchant of it."""
    category = rng.choice(choices, target.size)
    frame["category"][target] = category
    for c in choices:
        pool = pools.merchants_by_category[c]
        hit = target[category == c]
        if pool.size and hit.size:
            frame["merchant"][hit] = rng.choice(pool, hit.size)
