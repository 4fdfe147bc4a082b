"""What the workflows do on GitHub, through its CLI (`gh`). monitor.yml: a warning or a
call for retraining opens one issue, labelled ``monitoring``, or updates the open one
with the latest report; a call for retraining also dispatches retrain.yml (a
workflow_dispatch event, which the default GITHUB_TOKEN may trigger). retrain.yml: the
commit statuses of the checks it ran itself (a pull request opened with the default
GITHUB_TOKEN triggers no workflow, so none of the required checks would report)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from modelops.config import Settings

LABEL = "monitoring"
RETRAIN_WORKFLOW = "retrain.yml"


def gh(*args: str) -> str:
    """Run `gh` and return what it printed."""
    done = subprocess.run(["gh", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def act(settings: Settings, reports: Path) -> list[str]:
    """Open or update the monitoring issue and trigger retraining as the verdict in
    ``reports`` asks; what was done, one line each."""
    verdict = json.loads((reports / "verdict.json").read_text())
    level = verdict["level"]
    if level == "ok":
        return ["verdict ok: no issue, no retraining"]
    title = (
        f"Monitoring: {settings.model.name} {'needs retraining' if level == 'retrain' else 'warns'}"
    )
    body = str(reports / "report.md")
    gh("label", "create", LABEL, "--color", "D93F0B", "--force",
       "--description", "opened by the monitor workflow")  # fmt: skip
    found = gh("issue", "list", "--label", LABEL, "--state", "open", "--json", "number")
    numbers = [item["number"] for item in json.loads(found or "[]")]
    if numbers:
        number = str(min(numbers))
        gh("issue", "edit", number, "--title", title, "--body-file", body)
        done = [f"updated issue #{number}: {title}"]
    else:
        url = gh("issue", "create", "--title", title, "--label", LABEL, "--body-file", body)
        done = [f"opened {url}: {title}"]
    if level == "retrain":
        reason = "; ".join(verdict["reasons"])[:900]
        gh("workflow", "run", RETRAIN_WORKFLOW, "-f", f"reason={reason}")
        done.append(f"dispatched {RETRAIN_WORKFLOW}: {reason}")
    return done


def post_status(context: str, state: str, description: str) -> str:
    """A commit status on HEAD of $GITHUB_REPOSITORY, linking this workflow run; posted
    with the job's GITHUB_TOKEN, so it comes from the GitHub Actions app the ruleset's
    required checks name (integration 15368)."""
    if state not in ("success", "failure", "error", "pending"):
        raise ValueError(f"status state '{state}': expected success, failure, error or pending")
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    repository = os.environ["GITHUB_REPOSITORY"]
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    run = f"{server}/{repository}/actions/runs/{os.environ.get('GITHUB_RUN_ID', '')}"
    gh("api", "--method", "POST", f"repos/{repository}/statuses/{sha}",
       "-f", f"state={state}", "-f", f"context={context}",
       "-f", f"description={description[:140]}", "-f", f"target_url={run}")  # fmt: skip
    return f"{context}: {state} on {sha[:12]}"
