"""Run the DVC pipeline for the pull-request check and record how it went.

``dvc repro`` prints what it runs and our stages log their errors; both are streamed
through and the outcome is written to ``reports/pr/pipeline.json``: which stages ran,
which one failed and the error lines, so the gates can fail with the reason (a bad data
batch fails at ``validate``) and the report can show it. Results of an earlier check
are removed first, so nothing downstream can judge stale outputs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from modelops import paths
from modelops.io import write_json
from modelops.vcs import dvc, dvc_streamed

RAN = re.compile(r"Running stage '([^']+)'")
FAILED = re.compile(r"failed to reproduce '([^']+)'")
STAGE_ERROR = re.compile(r"^\[([\w-]+)\] ERROR: (.*)$")
DVC_LINE = re.compile(r"^(ERROR|WARNING|Running stage|Stage |Updating lock)")
STALE = (
    paths.BEHAVIOUR,
    paths.PARITY,
    paths.COMPARISON,
    paths.PR_SCORES,
    paths.VERDICT,
    paths.REPORT,
)


def parse(output: str, returncode: int) -> dict[str, Any]:
    """The outcome of a ``dvc repro`` from its combined output."""
    failed = FAILED.search(output)
    stage = failed.group(1) if failed else None
    errors = stage_errors(output, stage) if stage else []
    dvc_errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    return {
        "status": "passed" if returncode == 0 else "failed",
        "exit_code": returncode,
        "stages_run": RAN.findall(output),
        "failed_stage": stage,
        # our stage's own log lines name the problem; DVC's lines say which command died
        "errors": errors or dvc_errors,
    }


def stage_errors(output: str, stage: str) -> list[str]:
    """The error messages a stage logged, with their continuation lines."""
    messages: list[str] = []
    current: list[str] | None = None
    for line in output.splitlines():
        if (m := STAGE_ERROR.match(line)) and m.group(1) == stage:
            current = [m.group(2)]
            messages.append("")
        elif (
            current is not None
            and line.strip()
            and not line.startswith("[")
            and not DVC_LINE.match(line)
        ):
            current.append(line)
        else:
            current = None
        if current is not None:
            messages[-1] = "\n".join(current)
    return messages


def pull_outputs() -> None:
    """Restore the outputs ``dvc.lock`` names from the DVC cache or remote, so that only
    the stages the change affects rerun (the stages' outputs are ``persist``, which DVC's
    run cache does not serve). Whatever is missing is simply rebuilt by ``dvc repro``."""
    done = dvc("pull", "--allow-missing", "--quiet", check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        sys.stderr.write(f"[repro] could not pull outputs, rebuilding them: {' '.join(tail)}\n")


def run(record: Path = paths.PIPELINE_RUN, args: tuple[str, ...] = ()) -> dict[str, Any]:
    """``dvc repro`` with output streamed to the terminal; write and return the outcome."""
    for stale in STALE:
        stale.unlink(missing_ok=True)
    pull_outputs()
    outcome = parse(*dvc_streamed("repro", *args))
    write_json(outcome, record)
    return outcome
