"""Workflows stay thin and safe: every `run:` step is a make target or project CLI call
that exists, actions are pinned by commit SHA, permissions and timeouts are set, and
actionlint and zizmor are clean. The pull-request report workflow runs untrusted code
with the least it needs: no pull_request_target, no secrets in forks or in `run:`, the
gates decide the check. Dependabot and CODEOWNERS cover what decides a merge."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

WORKFLOWS = sorted((REPO / ".github/workflows").glob("*.yml"))
MAKE_TARGETS = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.MULTILINE))
CLI_COMMANDS = ("modelops ", "dvc ")
MAKE_VAR = re.compile(r"[A-Z_][A-Z0-9_]*=")


def steps():
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        for job_name, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                yield path.name, job_name, step


def test_there_are_workflows():
    assert any(p.name == "ci.yml" for p in WORKFLOWS)


@pytest.mark.parametrize(("workflow", "job", "step"), list(steps()))
def test_run_steps_call_existing_make_targets_or_the_cli(workflow, job, step):
    command = step.get("run")
    if command is None:
        return
    for line in filter(None, (x.strip() for x in command.splitlines())):
        if line.startswith("make "):
            # Options (-k) and variable overrides (BASE="$BASE_SHA") are not targets.
            targets = [
                t for t in line.split()[1:] if not t.startswith("-") and not MAKE_VAR.match(t)
            ]
            assert set(targets) <= MAKE_TARGETS, f"{workflow}/{job}: unknown target in {line!r}"
        else:
            assert line.startswith(CLI_COMMANDS), f"{workflow}/{job}: {line!r} is not thin"


@pytest.mark.parametrize(("workflow", "job", "step"), list(steps()))
def test_actions_are_pinned_by_commit_sha(workflow, job, step):
    uses = step.get("uses")
    if uses and not uses.startswith("./"):
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), f"{workflow}/{job}: {uses}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege_and_timeouts(path):
    workflow = yaml.safe_load(path.read_text())
    assert "permissions" in workflow, f"{path.name}: no top-level permissions"
    for name, job in workflow["jobs"].items():
        assert "timeout-minutes" in job, f"{path.name}/{name}: no timeout"


def tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(found).exists(), f"{name} is not installed (it is a dev dependency)"
    return found


def test_actionlint_is_clean():
    done = subprocess.run(
        [tool("actionlint")], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_is_clean():
    done = subprocess.run(
        [tool("zizmor"), "--offline", "--quiet", ".github/workflows"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


# The pull-request report workflow (pr-report.yml), Dependabot and CODEOWNERS.

PR_REPORT = REPO / ".github/workflows/pr-report.yml"


def load_workflow(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the bare key `on` as the boolean True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


@pytest.fixture(scope="module")
def pr_report() -> dict:
    return load_workflow(PR_REPORT)


@pytest.fixture(scope="module")
def pr_steps(pr_report) -> list[dict]:
    (job,) = pr_report["jobs"].values()
    return job["steps"]


def step_running(steps: list[dict], target: str) -> tuple[int, dict]:
    """The index and the step whose `run:` is `make <target> ...`."""
    found = [
        (i, s) for i, s in enumerate(steps) if s.get("run", "").split()[:2] == ["make", target]
    ]
    assert len(found) == 1, f"pr-report.yml: expected one `make {target}` step, got {len(found)}"
    return found[0]


def test_pr_report_triggers_only_on_pull_request_with_a_paths_filter(pr_report):
    on = pr_report["on"]
    assert set(on) == {"pull_request"}, "pr-report.yml must trigger on pull_request only"
    trigger = on["pull_request"]
    assert set(trigger["types"]) == {"opened", "synchronize", "reopened"}
    paths = set(trigger["paths"])
    for needed in ("src/**", "pipelines/**", "params.yaml", "dvc.yaml", "dvc.lock", "**/*.dvc"):
        assert needed in paths, f"pr-report.yml: paths filter misses {needed}"
    assert ".github/workflows/pr-report.yml" in paths


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_workflow_runs_untrusted_code_with_secrets(path):
    """pull_request_target runs with the base repository's secrets and a write token."""
    on = load_workflow(path)["on"]
    triggers = [on] if isinstance(on, str) else list(on)
    assert "pull_request_target" not in triggers, path.name


def test_pr_report_permissions_are_least_privilege(pr_report):
    top = pr_report["permissions"]
    assert top in ({}, {"contents": "read"}), f"pr-report.yml: top-level permissions {top}"
    for name, job in pr_report["jobs"].items():
        assert job["permissions"] == {"contents": "read", "pull-requests": "write"}, name


def test_pr_report_is_one_run_per_pull_request(pr_report):
    concurrency = pr_report["concurrency"]
    assert "github.event.pull_request.number" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is True


def test_pr_report_checks_out_full_history_without_persisted_credentials(pr_steps):
    checkouts = [s for s in pr_steps if s.get("uses", "").startswith("actions/checkout@")]
    assert len(checkouts) == 1
    options = checkouts[0]["with"]
    assert options["fetch-depth"] == 0, "DVC and CML need the base commit: fetch-depth 0"
    assert options["persist-credentials"] is False


def test_pr_report_gates_before_report_and_comment_guarded_for_forks(pr_steps):
    i_repro, _ = step_running(pr_steps, "pr-repro")
    i_gates, gates = step_running(pr_steps, "gates")
    i_report, report = step_running(pr_steps, "report")
    i_comment, comment = step_running(pr_steps, "comment")
    assert i_repro < i_gates < i_report < i_comment
    # The gates' exit code fails the check; nothing may swallow it.
    assert not gates.get("continue-on-error"), "the gates step must be able to fail the job"
    # The report and the comment still happen after a failed gate, unless cancelled.
    for step in (gates, report, comment):
        assert "!cancelled()" in step.get("if", ""), step["run"]
    # Fork pull requests get a read-only token: the comment step is skipped for them.
    guard = " ".join(comment["if"].split())
    assert "github.event.pull_request.head.repo.full_name == github.repository" in guard
    assert comment["env"]["REPO_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    # Every pull request, forks included, gets the report in the job summary.
    i_summary, summary = step_running(pr_steps, "job-summary")
    assert i_summary > i_report
    assert "head.repo" not in summary.get("if", "")


def test_pr_report_behaviour_runs_only_after_a_successful_pipeline(pr_steps):
    i_behaviour, behaviour = step_running(pr_steps, "behaviour")
    i_repro, repro = step_running(pr_steps, "pr-repro")
    assert i_repro < i_behaviour
    assert f"steps.{repro['id']}.outcome == 'success'" in behaviour["if"]


def test_pr_report_parity_runs_between_behaviour_and_gates_after_a_successful_pipeline(pr_steps):
    i_behaviour, behaviour = step_running(pr_steps, "behaviour")
    i_parity, parity = step_running(pr_steps, "parity")
    i_gates, _ = step_running(pr_steps, "gates")
    assert i_behaviour < i_parity < i_gates
    assert parity["if"] == behaviour["if"]


def test_pr_report_champion_is_the_pull_requests_base_commit(pr_steps):
    _, champion = step_running(pr_steps, "champion")
    assert champion["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    assert 'BASE="$BASE_SHA"' in champion["run"]


SECRET_STEPS = {"data", "champion", "comment"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expressions_in_run_steps(path):
    """`${{ }}` in `run:` is template injection; values go through `env:` instead."""
    for job_name, job in load_workflow(path)["jobs"].items():
        for step in job.get("steps", []):
            assert "${{" not in step.get("run", ""), f"{path.name}/{job_name}: {step['run']!r}"


def test_pr_report_secrets_only_in_the_env_of_steps_that_need_them(pr_report):
    def outside_step_env(workflow: dict) -> str:
        stripped = {k: v for k, v in workflow.items() if k != "jobs"}
        stripped["jobs"] = {
            name: {
                **{k: v for k, v in job.items() if k != "steps"},
                "steps": [{k: v for k, v in s.items() if k != "env"} for s in job["steps"]],
            }
            for name, job in workflow["jobs"].items()
        }
        return yaml.safe_dump(stripped)

    assert "secrets." not in outside_step_env(pr_report), "secrets outside a step's env"
    for job in pr_report["jobs"].values():
        for step in job["steps"]:
            env = yaml.safe_dump(step.get("env", {}))
            if "secrets." in env:
                words = step.get("run", "").split()
                target = words[1] if words[:1] == ["make"] else None
                assert target in SECRET_STEPS, f"secrets given to a step that needs none: {step}"


def test_dependabot_updates_uv_and_github_actions():
    config = yaml.safe_load((REPO / ".github/dependabot.yml").read_text())
    assert config["version"] == 2
    updates = {u["package-ecosystem"]: u for u in config["updates"]}
    assert {"uv", "github-actions"} <= set(updates)
    for ecosystem in ("uv", "github-actions"):
        update = updates[ecosystem]
        assert update["directory"] == "/"
        assert update["schedule"]["interval"] == "weekly"
        assert update.get("groups"), f"{ecosystem} updates are not grouped"


def test_codeowners_cover_the_gates():
    owners = {}
    for line in (REPO / ".github/CODEOWNERS").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            pattern, *names = line.split()
            owners[pattern.lstrip("/")] = names
    for path in ("params.yaml", "src/modelops/review/gates.py", "dvc.yaml", ".github/workflows/"):
        assert owners.get(path), f"CODEOWNERS: no owner for {path}"
