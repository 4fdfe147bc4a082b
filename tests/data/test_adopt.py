"""`modelops adopt`'s plan: checked in full before anything is written. (The whole command,
through `make adopt` on real data sets, runs in tests/integration/test_adopt.py.)"""

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from modelops.data.adopt import AdoptError, Request, plan
from tests.conftest import REPO

TEMPLATE_PARAMS = REPO / "params.yaml"


@pytest.fixture
def template(tmp_path, monkeypatch):
    """A folder with the template's params.yaml (as shipped) and desired states."""
    params = yaml.safe_load(TEMPLATE_PARAMS.read_text())
    if params["data"]["source"] != "simulator":
        pytest.skip("the template is adopted already: adoption starts from the example")
    shutil.copy(TEMPLATE_PARAMS, tmp_path / "params.yaml")
    shutil.copytree(REPO / "deploy", tmp_path / "deploy")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def events(weeks: int, rows: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    start = pd.Timestamp("2024-03-04")
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(rows)],
            "event_time": [
                start + pd.Timedelta(days=int(d)) for d in rng.integers(0, 7 * weeks, rows)
            ],
            "size": rng.uniform(1, 10, rows).round(2),
            "label": rng.choice(["yes", "no"], rows),
        }
    )


def test_a_short_time_span_holds_out_a_quarter_of_its_weeks(template):
    events(weeks=8).to_csv(template / "events.csv", index=False)
    planned = plan(Request(template / "events.csv", "label"))
    assert planned.settings.data_schema.time_column == "event_time"
    assert planned.settings.data_schema.id_column == "event_id"
    assert planned.settings.split.holdout_weeks == 2
    assert planned.settings.model.name == "events"
    assert planned.data.as_posix() == "events.csv"
    assert (template / "params.yaml").read_text() == TEMPLATE_PARAMS.read_text(), (
        "plan writes nothing"
    )


def test_one_week_of_data_cannot_be_split_by_time(template):
    events(weeks=1).to_csv(template / "events.csv", index=False)
    with pytest.raises(AdoptError, match="spans one week"):
        plan(Request(template / "events.csv", "label", time="event_time"))


def test_data_inside_the_example_folder_is_refused(template):
    (template / "data/raw").mkdir(parents=True)
    events(weeks=8).to_csv(template / "data/raw/events.csv", index=False)
    with pytest.raises(AdoptError, match="holds the example"):
        plan(Request(template / "data/raw/events.csv", "label"))


def test_an_adopted_template_is_refused(template):
    events(weeks=8).to_csv(template / "events.csv", index=False)
    params = template / "params.yaml"
    params.write_text(params.read_text().replace("source: simulator", "source: files", 1))
    with pytest.raises(AdoptError, match="adopted already"):
        plan(Request(template / "events.csv", "label"))
