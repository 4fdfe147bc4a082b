"""The only reader of params.yaml: typed, validated settings for every stage.

Errors name the offending field, e.g. ``params.yaml: model.params.max_iter: ...``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modelops.errors import InputError
from modelops.review.gates import GateSettings  # each gate declares its settings with its rule
from modelops.schema import ColumnType, Schema

DEFAULT_PARAMS = Path("params.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(_Section):
    """Where raw data lives and how it is obtained."""

    source: str = "simulator"
    path: Path = Path("data/raw")


class UpstreamChangeSettings(_Section):
    """An upstream system changes what it sends from ``week`` on (null: never)."""

    week: int | None = Field(None, ge=0)
    scale: dict[str, float] = Field(default_factory=dict)  # column -> factor (units)
    rename: dict[str, dict[str, str]] = Field(default_factory=dict)  # column -> {old: new}


class NewTacticSettings(_Section):
    """A kind of positive never seen before appears suddenly at ``week`` (null: never)."""

    week: int | None = Field(None, ge=0)
    share: float = Field(0.5, gt=0, lt=1)  # of the detectable positives from then on


class SimulatorSettings(_Section):
    """The example's seeded simulator; ignored unless data.source is simulator."""

    seed: int = 42
    start_date: dt.date = dt.date(2025, 1, 6)
    weeks: int = Field(16, ge=1)
    transactions_per_week: int = Field(30_000, ge=100)
    n_cards: int = Field(40_000, ge=10)
    n_merchants: int = Field(3_000, ge=10)
    fraud_rate: float = Field(0.012, gt=0, lt=0.5)
    signal_strength: float = Field(0.55, ge=0, le=1)
    undetectable_share: float = Field(0.12, ge=0, le=1)
    concept_drift: float = Field(0.2, ge=0)
    data_drift: float = Field(0.02, ge=0)
    upstream_change: UpstreamChangeSettings = UpstreamChangeSettings()
    new_tactic: NewTacticSettings = NewTacticSettings()


class SplitSettings(_Section):
    """Holdout selection: latest weeks by time, or a seeded stratified share."""

    holdout_weeks: int = Field(4, ge=1)
    holdout_fraction: float = Field(0.25, gt=0, lt=1)
    seed: int = 0


class FitRowsSettings(_Section):
    """The train rows the model (and the baselines) are fitted on, declared: the rows a
    pandas ``DataFrame.query`` keeps, then a seeded share of them. The train stage records
    how many rows reached the estimator (metrics/train.json), and the PR check compares
    that count with what this declaration implies."""

    query: str | None = None  # a DataFrame.query over train columns; None: every row
    sample: float = Field(1.0, gt=0, le=1)  # share of the queried rows, drawn with `seed`
    seed: int = 0

    @model_validator(mode="after")
    def _query_not_blank(self) -> Self:
        if self.query is not None and not self.query.strip():
            raise ValueError("query is blank; leave it out (null) to keep every train row")
        return self


class ModelSettings(_Section):
    """The estimator, by class path and keyword arguments, and the train rows it is
    fitted on."""

    name: str = Field("model", pattern=r"^[a-z0-9][a-z0-9-]*$")
    estimator: str = "sklearn.ensemble.HistGradientBoostingClassifier"
    encoding: Literal["ordinal", "onehot"] = "ordinal"
    params: dict[str, Any] = Field(default_factory=dict)
    fit_rows: FitRowsSettings = FitRowsSettings()


class BaselineSettings(_Section):
    """The logistic-regression baseline (the dummy baseline needs no settings)."""

    logistic_c: float = Field(1.0, gt=0)
    max_iter: int = Field(1000, ge=10)


class BootstrapSettings(_Section):
    """Resampling for confidence intervals."""

    n_resamples: int = Field(1000, ge=50)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    seed: int = 7


Cost = float | str  # a constant per row, or the name of a numeric column holding it


class CostSettings(_Section):
    """Expected cost of the decisions at the action rate. Each error type costs a constant
    or a column's value per row; every action (right or wrong) may cost a fee too."""

    missed_positive: Cost = 1.0  # a positive the model did not flag
    false_alarm: Cost = 1.0  # a negative the model flagged
    per_action: float = Field(0.0, ge=0)  # each flagged row, right or wrong

    def columns(self) -> list[str]:
        """The columns the costs read."""
        return [c for c in (self.missed_positive, self.false_alarm) if isinstance(c, str)]


class SliceSettings(_Section):
    """A slice of the holdout: a column's values, or bands of a numeric column."""

    name: str
    column: str
    bins: list[float] | None = None

    @model_validator(mode="after")
    def _bins_increase(self) -> Self:
        bins = self.bins
        if bins is not None and (len(bins) < 2 or any(a >= b for a, b in itertools.pairwise(bins))):
            raise ValueError(f"slice '{self.name}': bins must be at least two increasing edges")
        return self


class EvaluationSettings(_Section):
    """Holdout evaluation."""

    review_rate: float = Field(0.02, gt=0, lt=1)
    decline_rate: float = Field(0.002, gt=0, lt=1)
    bootstrap: BootstrapSettings = BootstrapSettings()
    costs: CostSettings = CostSettings()
    slices: list[SliceSettings] = Field(default_factory=list)
    calibration_bins: int = Field(10, ge=2)


Direction = Literal["increases", "decreases"]


class BehaviourSettings(_Section):
    """The behaviour gate's expectations of the model (``make behaviour``): raising a
    numeric feature from its 10th to its 90th percentile (a bool: False to True) moves
    the mean score this way."""

    expect: dict[str, Direction] = Field(default_factory=dict)


class WordSettings(_Section):
    """The words every output uses (summary, report, model card, API, plots)."""

    record: str = Field("record", pattern=r"^[a-z]+( [a-z]+)*$")  # one row: customer, claim...
    records: str = Field("", pattern=r"^([a-z]+( [a-z]+)*)?$")  # the plural; default record + s
    positive: str = Field("positive", min_length=1)  # the class scored: churn, default...
    negative: str = Field("negative", min_length=1)

    @property
    def plural(self) -> str:
        """The plural record noun."""
        return self.records or f"{self.record}s"

    @property
    def id_field(self) -> str:
        """The API's name for the record's id: ``<record>_id``."""
        return self.record.replace(" ", "_") + "_id"


DEFAULT_WORDS = WordSettings()


class ModelCardSettings(_Section):
    """The model card's prose, written by the team: what the model is for, where its data
    comes from and where it stops working. Markdown; ``file`` names a markdown file whose
    text is used instead of all three."""

    intended_use: str = "Not written yet: describe what the model is for (params.yaml model_card)."
    data: str = ""
    limits: str = "Not written yet: describe where the model should not be trusted."
    file: Path | None = None


class PredictionLogSettings(_Section):
    """Where and how the service records predictions (MODELOPS_LOG_URL overrides url),
    how long they are kept, and whether entity ids are stored as pseudonyms (keyed by
    the environment variable MODELOPS_PSEUDONYM_KEY, never by a setting)."""

    url: str = "sqlite:///reports/predictions.db"
    flush_interval_s: float = Field(0.2, gt=0)
    max_buffer: int = Field(100_000, ge=1)
    retention_days: int | None = Field(None, ge=1, strict=True)  # None: kept forever
    pseudonymize_entity: bool = False


class ServingSettings(_Section):
    """The prediction service (README: Serving)."""

    desired_state: Path = Path("deploy/environments/local.yaml")
    workers: int = Field(1, ge=1)
    access_log: bool = False
    tracing: bool = False
    reload_interval_s: float = Field(1.0, gt=0)
    reason_codes: int = Field(3, ge=0)
    max_batch_size: int = Field(256, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    batch_max_rows: int = Field(2048, ge=1)
    log: PredictionLogSettings = PredictionLogSettings()


class CanarySettings(_Section):
    """How `make deploy` bakes a canary on this machine before calling it healthy."""

    bake_s: float = Field(60.0, gt=0)
    interval_s: float = Field(2.0, gt=0)
    min_requests: int = Field(50, ge=1)  # challenger answers before its error rate counts
    max_error_rate: float = Field(0.01, ge=0, le=1)  # scoring failures / challenger requests
    max_p99_ms: float = Field(250.0, gt=0)  # /predict* p99 while the canary bakes


class ReleaseSettings(_Section):
    """Releasing versions (README: Releasing and rolling back)."""

    stages: list[str] = Field(["staging", "production"], min_length=1)  # promotion order
    canary: CanarySettings = CanarySettings()

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        if len(set(self.stages)) < len(self.stages) or "local" in self.stages:
            raise ValueError("stages must be distinct environments other than local")
        return self


class DriftSettings(_Section):
    """Data and prediction drift against the model version's reference profile."""

    @model_validator(mode="before")
    @classmethod
    def _no_fdr(cls, data: Any) -> Any:
        if isinstance(data, dict) and "fdr" in data:
            raise ValueError(
                "fdr is gone: monitoring.false_alarm_rate is one budget for every detector "
                "(data drift gets its share); remove monitoring.drift.fdr"
            )
        return data

    bins: int = Field(20, ge=4, le=100)  # quantile bins per numeric column in the profile
    min_effect: float = Field(0.05, ge=0)  # numeric: shift in reference SDs worth an alarm
    min_effect_category: float = Field(0.005, ge=0)  # categorical: share of rows moved
    min_rows: int = Field(500, ge=1)  # a smaller window is reported, not judged
    confidence: float = Field(0.95, gt=0, lt=1)  # of the effect sizes' intervals
    n_resamples: int = Field(1000, ge=100)  # parametric bootstrap of the bin counts
    seed: int = 0


class ControlSettings(_Section):
    """Control charts of the positive rate, mean score and key features."""

    arl: float = Field(365.0, gt=1)  # checks per false alarm of all charts, with no change
    shift_sd: float = Field(1.0, gt=0)  # the shift, in SDs, the chart is tuned to catch
    features: list[str] = Field(default_factory=list)  # [] : every numeric feature
    alarms: int = Field(2, ge=1)  # retrain after this many alarming windows...
    of_last: int = Field(3, ge=1)  # ...out of the last this many


class LabelSettings(_Section):
    """Delayed labels: when a window's performance is compared, and what a prediction
    without a label means (monitoring/labels.py)."""

    min_maturity: float = Field(0.8, gt=0, le=1)  # expected share of labels arrived
    min_positives: int = Field(20, ge=1)  # fewer labelled positives: not judged
    # unknown: both classes are labelled (0 and 1), each at its own pace; unlabelled rows
    # wait. negative: only positives are reported (e.g. chargebacks); no label counts as 0
    unlabelled: Literal["unknown", "negative"] = "unknown"


class RetrainSettings(_Section):
    """What a retraining pull request may do by itself (retrain.yml)."""

    automerge: bool = False  # merge when every gate passes and only data changed
    runner: Literal["hosted", "cml"] = "hosted"  # cml: `cml runner launch` a bigger machine
    runner_labels: str = "cml"  # the labels of the launched runner


class MonitoringSettings(_Section):
    """`make monitor` and the time-lapse (README: Monitoring and retraining)."""

    window_days: int = Field(7, ge=1)
    max_model_age_days: int = Field(56, ge=1)  # older: the verdict says retrain
    max_auc_drop: float = Field(0.02, gt=0, lt=1)  # live ROC-AUC below the holdout's by more
    false_alarm_rate: float = Field(0.05, gt=0, lt=1)  # any finding, in a check of no change
    drift: DriftSettings = DriftSettings()
    control: ControlSettings = ControlSettings()
    labels: LabelSettings = LabelSettings()
    retrain: RetrainSettings = RetrainSettings()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.control.alarms > self.control.of_last:
            raise ValueError("control.alarms must not exceed control.of_last")
        if self.false_alarm_rate <= 1 / self.control.arl:
            raise ValueError(
                "false_alarm_rate must exceed 1 / control.arl: the control charts' share "
                "of it, the rest going to the tests"
            )
        return self

    @property
    def test_alpha(self) -> float:
        """Each test's share of ``false_alarm_rate``: the control charts take one alarm
        per ``control.arl`` checks, and data drift, prediction drift and decay split the
        rest equally (each divides its share again among what it tests)."""
        return (self.false_alarm_rate - 1 / self.control.arl) / 3


class Settings(_Section):
    """Everything in params.yaml."""

    data: DataSettings = DataSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    data_schema: Schema = Field(alias="schema")
    words: WordSettings = WordSettings()
    model_card: ModelCardSettings = ModelCardSettings()
    split: SplitSettings = SplitSettings()
    model: ModelSettings = ModelSettings()
    baselines: BaselineSettings = BaselineSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    gates: GateSettings = GateSettings()
    behaviour: BehaviourSettings = BehaviourSettings()
    serving: ServingSettings = ServingSettings()
    release: ReleaseSettings = ReleaseSettings()
    monitoring: MonitoringSettings = MonitoringSettings()

    @model_validator(mode="after")
    def _columns_exist(self) -> Self:
        columns = self.data_schema.columns
        numbers = (ColumnType.INT, ColumnType.FLOAT)
        for name in self.evaluation.costs.columns():
            if name not in columns or columns[name].type not in numbers:
                raise ValueError(
                    f"evaluation.costs: '{name}' is neither a number nor a numeric column "
                    "of schema.columns"
                )
        for name in self.behaviour.expect:
            spec = columns.get(name)
            if name not in self.data_schema.features or spec is None:
                raise ValueError(f"behaviour.expect: '{name}' is not a feature of schema.columns")
            if spec.type not in (*numbers, ColumnType.BOOL):
                raise ValueError(
                    f"behaviour.expect: '{name}' is a {spec.type} column; only int, float "
                    "and bool features have a direction"
                )
        if self.evaluation.decline_rate > self.evaluation.review_rate:
            raise ValueError("evaluation.decline_rate must not exceed evaluation.review_rate")
        for item in self.evaluation.slices:
            if item.column not in columns:
                raise ValueError(f"evaluation.slices '{item.name}': no column '{item.column}'")
            numeric = columns[item.column].type in (ColumnType.INT, ColumnType.FLOAT)
            if item.bins is not None and not numeric:
                raise ValueError(f"evaluation.slices '{item.name}': bins need a numeric column")
        return self


class ConfigError(InputError):
    """params.yaml is missing, unreadable or invalid."""


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2's booleans: only true and false. DVC reads and rewrites params.yaml
    (`dvc exp run -S`) as YAML 1.2, which leaves Yes, No, On and Off unquoted; read as
    YAML 1.1 they would turn into booleans."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def read_params(text: str) -> Any:
    """Parse params.yaml text the way DVC does (YAML 1.2 booleans)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader subclass


def load_settings(path: Path | str = DEFAULT_PARAMS) -> Settings:
    """Read and validate params.yaml; raise ConfigError naming each bad field."""
    path = Path(path)
    try:
        raw = read_params(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"  {'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigError(f"{path}: invalid settings:\n" + "\n".join(problems)) from exc
