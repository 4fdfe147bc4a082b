"""``modelops gates``: compare, judge, and write the verdict and what the report needs."""

from __future__ import annotations

import logging
from typing import Any

from modelops import paths
from modelops.config import Settings
from modelops.io import read_json, write_json, write_parquet
from modelops.review.compare import compare, scores_frame
from modelops.review.gates import judge, verdict

log = logging.getLogger(__name__)


def run_gates(settings: Settings) -> dict[str, Any]:
    """Judge the pipeline's model; write ``verdict.json`` (and the comparison)."""
    outcome = read_json(paths.PIPELINE_RUN) if paths.PIPELINE_RUN.exists() else None
    result = summary = None
    # judge only fresh outputs: a recorded successful run, or (run by hand) outputs present
    fresh = outcome["status"] == "passed" if outcome else paths.MODEL.exists()
    if fresh:
        comparison = compare(settings)
        result, summary = comparison.result, comparison.summary
        write_json(summary, paths.COMPARISON)
        write_parquet(scores_frame(comparison), paths.PR_SCORES)
    gates = judge(result, summary, outcome, paths.BEHAVIOUR, settings.gates)
    decision = verdict(gates)
    write_json(decision, paths.VERDICT)
    for gate in gates:
        if gate.status != "pass":
            log.info("%-8s %s: %s", gate.status.upper(), gate.name, gate.reason)
    log.info("verdict: %s (%d gates)", decision["verdict"], len(gates))
    return decision
