import numpy as np
import pandas as pd
import pytest

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
