import numpy as np
import pandas as pd
import pytest

from modelops.config import SimulatorSettings
from modelops.example.simulator import TACTICS, simulate_week, tactic_mix
from tests.conftest import with_updates

pytestmark = pytest.mark.example


def test_same_seed_same_week(settings):
    pd.testing.assert_frame_equal(
        simulate_week(settings.simulator, 3), simulate_week(settings.simulator, 3)
    )


def test_other_seed_other_data(settings):
    other = settings.simulator.model_copy(update={"seed": 1})
    assert not simulate_week(other, 0)["amount"].equals(
        simulate_week(settings.simulator, 0)["amount"]
    )


def test_realistic_fraud_rate_and_unique_ids(simulated):
    assert 0.005 <= simulated["is_fraud"].mean() <= 0.02
    assert simulated["transaction_id"].is_unique


def test_weeks_follow_each_other(settings, simulated):
    weeks = simulated["timestamp"].dt.to_period("W").nunique()
    assert weeks == settings.simulator.weeks
    start = pd.Timestamp(settings.simulator.start_date)
    assert simulated["timestamp"].min() >= start
    assert simulated["timestamp"].max() < start + pd.Timedelta(weeks=settings.simulator.weeks)


def test_online_payments_have_no_distance(simulated):
    online = simulated["channel"] == "online"
    assert simulated.loc[online, "distance_from_home_km"].isna().all()
    assert simulated.loc[~online, "distance_from_home_km"].notna().all()


def test_concept_drift_moves_the_tactic_mix(settings):
    early, late = tactic_mix(settings.simulator, 0), tactic_mix(settings.simulator, 15)
    assert np.isclose(early.sum(), 1)
    assert np.isclose(late.sum(), 1)
    bust_out = TACTICS.index("bust_out")
    assert late[bust_out] > 5 * early[bust_out]
    frozen = settings.simulator.model_copy(update={"concept_drift": 0.0})
    np.testing.assert_allclose(tactic_mix(frozen, 0), tactic_mix(frozen, 15))


def test_data_drift_moves_the_population(settings):
    drifting = with_updates(settings, simulator={"data_drift": 0.05}).simulator
    first, later = simulate_week(drifting, 0), simulate_week(drifting, 12)
    assert (later["channel"] == "online").mean() > (first["channel"] == "online").mean() + 0.1
    assert later["amount"].median() > first["amount"].median()


def test_fraud_differs_from_legit_where_tactics_act(simulated):
    fraud = simulated[simulated["is_fraud"] == 1]
    legit = simulated[simulated["is_fraud"] == 0]
    assert fraud["new_device"].mean() > 3 * legit["new_device"].mean()
    assert fraud["txn_count_1h"].mean() > legit["txn_count_1h"].mean()


def simulator(settings, **fields) -> SimulatorSettings:
    """The test simulator settings with ``fields`` replaced (validated)."""
    return SimulatorSettings.model_validate(settings.simulator.model_dump() | fields)


def test_a_new_tactic_appears_suddenly_at_its_week(settings):
    sim = simulator(settings, new_tactic={"week": 5, "share": 0.5}, transactions_per_week=20000)
    relay = TACTICS.index("relay")
    assert len(tactic_mix(sim, 4)) == relay  # not yet: the four drifting tactics only
    assert tactic_mix(sim, 5)[relay] == 0.5
    assert np.isclose(tactic_mix(sim, 5).sum(), 1)
    before, after = simulate_week(sim, 4), simulate_week(sim, 5)
    fraud = [week.loc[week["is_fraud"] == 1, "channel"] for week in (before, after)]
    assert (fraud[1] == "contactless").mean() > (fraud[0] == "contactless").mean() + 0.15
    # the weeks before it are the same as without it
    unset = simulator(settings, new_tactic={"week": None}, transactions_per_week=20000)
    pd.testing.assert_frame_equal(before, simulate_week(unset, 4))


def test_an_upstream_change_scales_and_renames_from_its_week(settings):
    change = {"week": 3, "scale": {"amount": 100}, "rename": {"channel": {"online": "web"}}}
    sim = simulator(settings, upstream_change=change)
    plain = simulator(settings, upstream_change={"week": None})
    pd.testing.assert_frame_equal(simulate_week(sim, 2), simulate_week(plain, 2))
    changed, unchanged = simulate_week(sim, 3), simulate_week(plain, 3)
    np.testing.assert_allclose(changed["amount"], unchanged["amount"] * 100)
    assert set(changed["channel"]) == {"pos", "contactless", "web"}
    bad = simulator(settings, upstream_change={"week": 0, "scale": {"amt": 2}})
    with pytest.raises(ValueError, match=r"simulator\.upstream_change\.scale: no column 'amt'"):
        simulate_week(bad, 0)
