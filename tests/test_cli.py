from modelops.cli import main
from modelops.training.summary import render


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
