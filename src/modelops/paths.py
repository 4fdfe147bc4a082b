"""Where each stage reads and writes, relative to the repository root.

dvc.yaml declares the same paths (tests/test_dvc_yaml.py keeps the two in step).
"""

from pathlib import Path

VALIDATED = Path("data/validated.parquet")
VALIDATION_REPORT = Path("metrics/data.json")
TRAIN = Path("data/train.parquet")
HOLDOUT = Path("data/holdout.parquet")
MODEL = Path("models/model.joblib")
TRAIN_RECORD = Path("metrics/train.json")  # the rows the model was fitted on
BASELINES = Path("models/baselines.joblib")
METRICS = Path("metrics/metrics.json")
BASELINE_METRICS = Path("metrics/baselines.json")
SLICES = Path("metrics/slices.json")
HOLDOUT_SCORES = Path("reports/holdout_scores.parquet")
LINEAGE = Path("models/lineage.json")
MODEL_CARD = Path("models/model_card.md")
PLOTS = Path("plots")
PROFILE = Path("models/profile.json")  # the reference for drift monitoring
DVC_LOCK = Path("dvc.lock")

# The pull-request check (champion, gates, report); not DVC outputs.
PR = Path("reports/pr")
CHAMPION = PR / "champion"
PIPELINE_RUN = PR / "pipeline.json"
BEHAVIOUR = PR / "behaviour.xml"
PARITY = PR / "parity.json"
COMPARISON = PR / "comparison.json"
PR_SCORES = PR / "scores.parquet"
VERDICT = PR / "verdict.json"
REPORT = PR / "report.md"
REPORT_PNG = PR / "report.png"
