import datetime as dt
import socket

import sqlalchemy as sa
import yaml

from modelops.cli import main
from modelops.serving import predlog
from modelops.training.summary import render
from tests.conftest import PARAMS


def test_summary_before_any_run_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["summary"]) == 1
    assert "make run" in capsys.readouterr().err


def test_bad_params_exit_1_naming_the_field(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(
        "schema: {columns: {y: {type: int, role: target}}}\nsplit: {holdout_weeks: 0}\n"
    )
    assert main(["--params", str(params), "data", "get"]) == 1
    err = capsys.readouterr().err
    assert "split.holdout_weeks" in err
    assert "Traceback" not in err


def test_summary_renders_metrics_intervals_and_lift():
    estimate = {"value": 0.9, "ci_low": 0.88, "ci_high": 0.92}
    metrics = {
        "roc_auc": estimate,
        "holdout": {"rows": 1000, "positives": 12, "review_rate": 0.02, "threshold": 0.3,
                    "confidence": 0.95, "resamples": 100},
    }  # fmt: skip
    baselines = {"dummy": {"lift": {"roc_auc": estimate, "average_precision": estimate}}}
    lineage = {"model_id": "m-1", "data": {"train": {"rows": 5000}}}
    text = render(metrics, baselines, lineage)
    assert "ROC-AUC" in text
    assert "0.9000  [0.8800, 0.9200]" in text
    assert "dummy: ROC-AUC" in text
    assert "+0.9000" in text
    assert "models/model.joblib" in text


# `modelops log prune`: the retention of serving.log, end to end on SQLite.


def prune_params(tmp_path, retention_days) -> str:
    """The repository's params with another serving.log.retention_days."""
    params = yaml.safe_load(PARAMS.read_text())
    log = params.setdefault("serving", {}).setdefault("log", {})
    log["retention_days"] = retention_days
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return str(path)


def aged_log(tmp_path, monkeypatch) -> str:
    """A SQLite log (MODELOPS_LOG_URL) with predictions 100 and 1 days old, and labels."""
    url = f"sqlite:///{tmp_path / 'log' / 'predictions.db'}"
    monkeypatch.setenv("MODELOPS_LOG_URL", url)
    now = dt.datetime.now(dt.UTC)
    rows = [
        {"request_id": request_id, "record_id": request_id, "entity_id": None,
         "created_at": now - dt.timedelta(days=age), "model_version": "m:1",
         "route": "champion", "automation": "partial", "score": 0.5, "decision": "review",
         "latency_ms": 1.0, "inputs": {}, "reasons": []}
        for request_id, age in [("old-1", 100), ("new-1", 1), ("old-2", 100)]
    ]  # fmt: skip
    labels = [{"request_id": r, "record_id": r, "label": 0, "received_at": now} for r in
              ("old-1", "new-1")]  # fmt: skip
    engine = predlog.make_engine(url)
    predlog.migrate(engine)
    with engine.begin() as connection:
        connection.execute(predlog.PREDICTIONS.insert(), rows)
        connection.execute(predlog.FEEDBACK.insert(), labels)
    engine.dispose()
    return url


def request_ids(url: str, table) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        found = connection.execute(sa.select(table.c.request_id).order_by(table.c.id))
        ids = list(found.scalars())
    engine.dispose()
    return ids


def test_log_prune_dry_run_then_deletes_what_is_older_than_retention(tmp_path, monkeypatch, capsys):
    url = aged_log(tmp_path, monkeypatch)
    params = prune_params(tmp_path, 90)
    assert main(["--params", params, "log", "prune", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete 2 predictions" in out
    assert "1 labels: 0 received before then, 1 of those predictions" in out
    assert "retention_days: 90" in out
    assert request_ids(url, predlog.PREDICTIONS) == ["old-1", "new-1", "old-2"]
    assert request_ids(url, predlog.FEEDBACK) == ["old-1", "new-1"]

    assert main(["--params", params, "log", "prune"]) == 0
    out = capsys.readouterr().out
    assert f"{url}: deleted 2 predictions" in out
    assert request_ids(url, predlog.PREDICTIONS) == ["new-1"]
    assert request_ids(url, predlog.FEEDBACK) == ["new-1"]
    assert main(["--params", params, "log", "prune"]) == 0
    assert "deleted 0 predictions" in capsys.readouterr().out


def test_log_prune_with_null_retention_says_so_and_keeps_everything(tmp_path, monkeypatch, capsys):
    url = aged_log(tmp_path, monkeypatch)
    assert main(["--params", prune_params(tmp_path, None), "log", "prune"]) == 0
    out = capsys.readouterr().out
    assert "serving.log.retention_days is null" in out
    assert "kept forever; nothing deleted" in out
    assert request_ids(url, predlog.PREDICTIONS) == ["old-1", "new-1", "old-2"]


def test_log_prune_without_a_log_deletes_nothing(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    monkeypatch.setenv("MODELOPS_LOG_URL", url)
    assert main(["--params", prune_params(tmp_path, 90), "log", "prune"]) == 0
    assert f"no prediction log at {url}: nothing to delete" in capsys.readouterr().out
    assert not (tmp_path / "none.db").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_log_prune_of_an_unreachable_database_exits_1_without_its_password(
    tmp_path, monkeypatch, capsys
):
    url = f"postgresql+psycopg://someone:s3cret@127.0.0.1:{free_port()}/none?connect_timeout=2"
    monkeypatch.setenv("MODELOPS_LOG_URL", url)
    assert main(["--params", prune_params(tmp_path, 90), "log", "prune"]) == 1
    captured = capsys.readouterr()
    assert "cannot prune the prediction log at postgresql+psycopg://someone:***@" in captured.err
    assert "s3cret" not in captured.out + captured.err
    assert "Traceback" not in captured.err
