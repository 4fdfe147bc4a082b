"""The report of a promotion pull request (`make promotion-report ENV=<env>`): what the
environment's next desired state would serve, judged two ways.

- Offline: the champion and the challenger scored on the same holdout (the pipeline's
  current one), each model taken from DVC at its version's commit, with paired bootstrap
  intervals of the challenger's difference.
- Live, when the challenger has served in that environment (shadow, canary, A/B,
  blue-green): from the prediction log, each version's requests, mean score, decision
  rates and latency; on requests both scored (shadow), how often their scores and
  decisions agree; and, where labels came back, each version's ROC-AUC on them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
import yaml
from sklearn.metrics import roc_auc_score

from modelops import paths
from modelops.config import Settings
from modelops.io import load_model
from modelops.metric_registry import METRICS
from modelops.release.environments import ENVIRONMENTS
from modelops.release.registry import Version, find
from modelops.review.champion import fetch_from_dvc
from modelops.serving.predlog import FEEDBACK, PREDICTIONS
from modelops.training.evaluate import make_holdout, scored
from modelops.training.metrics import bootstrap, improvement
from modelops.training.scoring import score

REPORTS = Path("reports/promotion")  # <env>.md, what promotion.yml posts
MIN_LABELS = 50  # labelled requests per version before its live ROC-AUC is shown
OFFLINE = ("roc_auc", "average_precision", "recall_at_review_rate", "log_loss")


@dataclass(frozen=True)
class Pair:
    """The champion and challenger versions a desired state names."""

    champion: Version
    challenger: Version | None


def pair(root: Path, settings: Settings, env: str) -> Pair:
    """The registered versions ``env``'s desired state names."""
    state = yaml.safe_load((root / ENVIRONMENTS / f"{env}.yaml").read_text()) or {}
    name = settings.model.name

    def version(tag: str | None) -> Version | None:
        return find(root, name, tag.partition(":")[2]) if tag else None

    champion = version(state.get("champion"))
    assert champion is not None  # check-state ran first: the champion is registered
    return Pair(champion, version(state.get("challenger")))


def offline(root: Path, settings: Settings, versions: Pair) -> list[str]:
    """Markdown: both versions on the same holdout, the challenger's paired differences."""
    if versions.challenger is None:
        return ["No challenger: nothing to compare offline."]
    frame = pd.read_parquet(root / paths.HOLDOUT)
    evaluation = settings.evaluation
    holdout = make_holdout(frame, settings.data_schema, evaluation)
    models = {}
    with tempfile.TemporaryDirectory(prefix="promotion-") as folder:
        for role, version in (("champion", versions.champion), ("challenger", versions.challenger)):
            target = Path(folder) / f"{role}.joblib"
            fetch_from_dvc(version.commit, target)
            values = score(load_model(target), frame, settings.data_schema)
            models[role] = scored(values, evaluation)
    result = bootstrap(
        holdout,
        models,
        n_resamples=evaluation.bootstrap.n_resamples,
        confidence=evaluation.bootstrap.confidence,
        seed=evaluation.bootstrap.seed,
    )
    lines = [
        f"On this branch's holdout ({len(frame):,} rows), each model from DVC at its version's "
        "commit; the difference is the challenger's, paired, positive = better:",
        "",
        f"| metric | {versions.champion.version} (champion) | "
        f"{versions.challenger.version} (challenger) | difference [interval] |",
        "|---|---:|---:|---:|",
    ]
    for name in OFFLINE:
        metric = METRICS[name]
        better = improvement(result.difference("challenger", "champion", name), name)
        lines.append(
            f"| {metric.title()} | {metric.text(result.estimate('champion', name).value)} "
            f"| {metric.text(result.estimate('challenger', name).value)} "
            f"| {better.value:+.4f} [{better.ci_low:+.4f}, {better.ci_high:+.4f}] |"
        )
    return lines


def live(url: str, versions: Pair) -> list[str]:
    """Markdown: what the prediction log says of both versions."""
    tags = [v.model_tag for v in (versions.champion, versions.challenger) if v]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("predictions"):
                return [f"The prediction log ({engine.dialect.name}) has no predictions yet."]
            rows = pd.read_sql(
                sa.select(
                    PREDICTIONS.c.request_id, PREDICTIONS.c.model_version, PREDICTIONS.c.route,
                    PREDICTIONS.c.score, PREDICTIONS.c.decision, PREDICTIONS.c.latency_ms,
                ).where(PREDICTIONS.c.model_version.in_(tags)),
                connection,
            )  # fmt: skip
            labels = pd.read_sql(sa.select(FEEDBACK.c.request_id, FEEDBACK.c.label), connection)
    finally:
        engine.dispose()
    if rows.empty:
        return ["Neither version has answered a request in the prediction log yet."]
    return [*_per_version(rows, labels, tags), "", *_agreement(rows, versions)]


def _per_version(rows: pd.DataFrame, labels: pd.DataFrame, tags: list[str]) -> list[str]:
    labelled = rows.merge(labels, on="request_id", how="inner")
    lines = [
        "| version | route | requests | mean score | review / decline share | p50 / p99 ms "
        f"| labelled | ROC-AUC on labels (≥ {MIN_LABELS}) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (tag, route), group in rows.groupby(["model_version", "route"], sort=False):
        if tag not in tags:
            continue
        decisions = group["decision"].value_counts(normalize=True)
        known = labelled[(labelled.model_version == tag) & (labelled.route == route)]
        auc = "-"
        if len(known) >= MIN_LABELS and known["label"].nunique() == 2:
            auc = f"{roc_auc_score(known['label'], known['score']):.4f}"
        p50, p99 = np.percentile(group["latency_ms"], [50, 99])
        lines.append(
            f"| {tag} | {route} | {len(group):,} | {group['score'].mean():.4f} "
            f"| {decisions.get('review', 0):.1%} / {decisions.get('decline', 0):.1%} "
            f"| {p50:.1f} / {p99:.1f} | {len(known):,} | {auc} |"
        )
    return lines


def _agreement(rows: pd.DataFrame, versions: Pair) -> list[str]:
    """Score and decision agreement on the requests both versions scored (shadow)."""
    if versions.challenger is None:
        return []
    champion = rows[rows.model_version == versions.champion.model_tag]
    challenger = rows[rows.model_version == versions.challenger.model_tag]
    both = champion.merge(challenger, on="request_id", suffixes=("_a", "_b"))
    if both.empty:
        return ["No request was scored by both versions (shadow), so no agreement to show."]
    a, b = both["score_a"].to_numpy(), both["score_b"].to_numpy()
    decide = [
        _decisions(s, v.record["thresholds"])
        for s, v in ((a, versions.champion), (b, versions.challenger))
    ]
    same = float(np.mean(decide[0] == decide[1]))
    correlation = float(pd.Series(a).corr(pd.Series(b), method="spearman"))
    return [
        f"On the {len(both):,} requests both versions scored: decisions agree on {same:.1%} "
        f"(each version's own thresholds), score rank correlation {correlation:.3f}, "
        f"mean |score difference| {np.mean(np.abs(a - b)):.4f}.",
    ]


def _decisions(scores: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    return np.where(
        scores >= thresholds["decline"],
        "decline",
        np.where(scores >= thresholds["review"], "review", "approve"),
    )


def write(root: Path, settings: Settings, env: str, out: Path) -> Path:
    """Write the promotion report of ``env`` to ``out`` (markdown)."""
    versions = pair(root, settings, env)
    url = os.environ.get("MODELOPS_LOG_URL", settings.serving.log.url)
    challenger = versions.challenger.version if versions.challenger else "none"
    lines = [
        f"## Promotion of {env}: champion {versions.champion.version}, challenger {challenger}",
        "",
        "### Offline",
        "",
        *offline(root, settings, versions),
        "",
        "### Live (prediction log)",
        "",
        *live(url, versions),
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out
