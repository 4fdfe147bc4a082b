"""``modelops gates``: take the measurements, judge them, and write the verdict and what
the report needs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from modelops import paths
from modelops.config import Settings
from modelops.io import read_json, write_json, write_parquet
from modelops.review.compare import (
    CHALLENGER,
    CHAMPION,
    Comparison,
    NoSharedRowsError,
    compare,
    scores_frame,
)
from modelops.review.gates import Measured, judge, verdict
from modelops.review.integrity import measure as integrity
from modelops.serving.state import load_state
from modelops.vcs import changed_files

log = logging.getLogger(__name__)

ENVIRONMENTS = Path("deploy/environments")  # the desired state of each environment
LEAKAGE = (
    "unexpected improvement from a code-only change: check for leakage (the split-integrity "
    "gates are listed first)"
)


def _json(path: Path) -> Any:
    return read_json(path) if path.exists() else None


def fixed_thresholds(folder: Path = ENVIRONMENTS) -> dict[str, dict[str, float]]:
    """The thresholds each desired-state file fixes (file -> action -> threshold)."""
    fixed = {}
    for path in sorted(folder.glob("*.yaml")):
        state = load_state(path, resolve=lambda tag: tag)
        values = state.thresholds.model_dump(exclude_none=True)
        if values:
            fixed[str(path)] = values
    return fixed


def code_only(files: list[str] | None) -> bool:
    """True when a change touches neither data nor params (dvc.lock follows the code)."""
    if not files:
        return False
    data = [f for f in files if f.endswith(".dvc") or f.startswith("data/") or f == "params.yaml"]
    return not data


def warnings(comparison: Comparison | None, files: list[str] | None) -> list[str]:
    """Plain warnings beside the verdict: a credible gain from a code-only change."""
    if comparison is None or CHAMPION not in comparison.scored or not code_only(files):
        return []
    gain = comparison.result.difference(CHALLENGER, CHAMPION, "roc_auc")
    return [LEAKAGE] if gain.ci_low > 0 else []


def measure(settings: Settings) -> Measured:
    """Every measurement the gates judge, from the files of one PR check."""
    outcome = _json(paths.PIPELINE_RUN)
    # judge only fresh outputs: a recorded successful run, or (run by hand) outputs present
    fresh = outcome["status"] == "passed" if outcome else paths.MODEL.exists()
    if not fresh:
        return Measured(pipeline=outcome)
    facts = integrity(settings)
    comparison, why = None, ""
    try:
        comparison = compare(settings)
    except NoSharedRowsError as exc:
        why = str(exc)
    else:
        write_json(comparison.summary | {"integrity": facts}, paths.COMPARISON)
        write_parquet(scores_frame(comparison), paths.PR_SCORES)
    return Measured(
        pipeline=outcome,
        fresh=True,
        comparison=comparison,
        not_compared=why,
        behaviour=paths.BEHAVIOUR,
        baselines=_json(paths.BASELINE_METRICS),
        integrity=facts,
        parity=this_models(_json(paths.PARITY)),
        fixed_thresholds=fixed_thresholds(),
    )


def this_models(parity: dict[str, Any] | None) -> dict[str, Any] | None:
    """The parity record when it is of the pipeline's current model (not a stale one)."""
    lineage = _json(paths.LINEAGE)
    if parity is None or lineage is None:
        return parity
    version = lineage["model_id"].rsplit("-", 1)[-1]
    return parity if str(parity.get("model", "")).endswith(f":{version}") else None


def run_gates(settings: Settings) -> dict[str, Any]:
    """Judge the pipeline's model; write ``verdict.json`` (and the comparison)."""
    measured = measure(settings)
    gates = judge(settings.gates, measured)
    base = (measured.comparison.summary["champion"] if measured.comparison else {}).get("commit")
    decision = verdict(gates, warnings(measured.comparison, changed_files(base)))
    lineage = _json(paths.LINEAGE)  # which model was judged: a release checks it
    decision["model_id"] = lineage["model_id"] if lineage else None
    write_json(decision, paths.VERDICT)
    for gate in gates:
        if gate.status != "pass":
            log.info("%-8s %s: %s", gate.status.upper(), gate.name, gate.reason)
    for warning in decision["warnings"]:
        log.warning(warning)
    log.info("verdict: %s (%d gates)", decision["verdict"], len(gates))
    return decision
