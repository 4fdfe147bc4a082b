"""Workflows stay thin and safe: every `run:` step is a make target or project CLI call
that exists, actions are pinned by commit SHA, permissions and timeouts are set, and
actionlint and zizmor are clean. The pull-request report workflow runs untrusted code
with the least it needs: no pull_request_target, no secrets in forks or in `run:`, the
gates decide the check. The scheduled prediction-log retention job gets the log's URL
and nothing else. Dependabot and CODEOWNERS cover what decides a merge. The
ruleset in .github/rulesets/ requires the checks those workflows report, by their names.
Releasing chains the gates, the registration, the image and the promotion pull request in
one job; deployment binds each environment's secret to its own job."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelops.release.environments import changed
from tests.conftest import REPO

WORKFLOWS = sorted((REPO / ".github/workflows").glob("*.yml"))
MAKE_TARGETS = set(
    re.findall(r"^([a-z][a-z0-9-]*):", (REPO / "Makefile").read_text(), re.MULTILINE)
)
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


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_is_clean(persona):
    """Also as an auditor would read them; each finding left is justified in place."""
    done = subprocess.run(
        [tool("zizmor"), "--offline", "--quiet", "--persona", persona, ".github/workflows"],
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
    return pr_report["jobs"]["report"]["steps"]


def step_running(steps: list[dict], target: str) -> tuple[int, dict]:
    """The index and the step whose `run:` is `make <target> ...`."""
    found = [
        (i, s) for i, s in enumerate(steps) if s.get("run", "").split()[:2] == ["make", target]
    ]
    assert len(found) == 1, f"pr-report.yml: expected one `make {target}` step, got {len(found)}"
    return found[0]


def test_pr_report_runs_on_every_pull_request_and_skips_the_job_only(pr_report):
    """A `paths:` filter would leave the required check "model report" at "Expected" on
    pull requests it skips; the `changes` job skips the report job instead."""
    on = pr_report["on"]
    assert set(on) == {"pull_request"}, "pr-report.yml must trigger on pull_request only"
    trigger = on["pull_request"]
    assert set(trigger) == {"types"}, "no paths/branches filters: the check must report"
    assert set(trigger["types"]) == {"opened", "synchronize", "reopened"}
    changes, report = pr_report["jobs"]["changes"], pr_report["jobs"]["report"]
    (diff,) = [s for s in changes["steps"] if "run" in s]
    assert diff["run"] == "make model-changed BASE=HEAD^1"
    assert changes["outputs"]["model"] == f"${{{{ steps.{diff['id']}.outputs.model }}}}"
    assert report["needs"] == "changes"
    # Skipped only on an explicit "false": a failed `changes` job runs the report.
    assert report["if"] == "${{ !cancelled() && needs.changes.outputs.model != 'false' }}"


def make_variable(name: str) -> list[str]:
    """The words of a `NAME := ...` variable of the Makefile, continuation lines joined."""
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    (value,) = re.findall(rf"^{name} := (.*)$", text, re.MULTILINE)
    return value.split()


def test_model_paths_cover_what_the_report_judges():
    paths = make_variable("MODEL_PATHS")
    for needed in ("src", "pipelines", "params.yaml", "dvc.yaml", "dvc.lock", "':(glob)**/*.dvc'",
                   "Makefile", "tests/training/test_model_behaviour.py",
                   ".github/workflows/pr-report.yml"):  # fmt: skip
        assert needed in paths, f"Makefile: MODEL_PATHS misses {needed}"


def model_changed(repo: Path, base: str) -> tuple[str, str]:
    """`make model-changed` in `repo`: what it prints and what it writes to GITHUB_OUTPUT."""
    output = repo / "github_output"
    output.write_text("")
    done = subprocess.run(
        ["make", "--no-print-directory", "-f", str(REPO / "Makefile"), "model-changed",
         f"BASE={base}"],
        cwd=repo, capture_output=True, text=True, check=True,
        env={**os.environ, "GITHUB_OUTPUT": str(output)},
    )  # fmt: skip
    return done.stdout.strip(), output.read_text().strip()


def test_model_changed_says_whether_a_pull_request_touches_the_model(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=tmp_path, check=True, capture_output=True)  # fmt: skip

    def commit(path: str) -> None:
        file = tmp_path / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(file.read_text() + "more\n" if file.exists() else "new\n")
        git("add", path)
        git("commit", "-qm", path)

    git("init", "-q")
    commit("README.md")
    for path, touched in [("README.md", "false"), ("docs/notes.md", "false"),
                          (".github/workflows/ci.yml", "false"), ("src/modelops/gates.py", "true"),
                          ("data/raw.dvc", "true"), ("data/sub/extra.dvc", "true"),
                          ("params.yaml", "true"), ("Makefile", "true")]:  # fmt: skip
        commit(path)
        assert model_changed(tmp_path, "HEAD^1") == (f"model={touched}",) * 2, path
    # Only the pull request's own changes count (BASE...HEAD), not the base's since.
    git("branch", "-M", "main")
    git("checkout", "-qb", "pr")
    commit("README.md")
    git("checkout", "-q", "main")
    commit("src/modelops/gates.py")
    git("checkout", "-q", "pr")
    assert model_changed(tmp_path, "main") == ("model=false",) * 2
    # Unknown means judge: a base git cannot resolve says the model changed.
    assert model_changed(tmp_path, "no-such-branch") == ("model=true",) * 2


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_workflow_runs_untrusted_code_with_secrets(path):
    """pull_request_target runs with the base repository's secrets and a write token."""
    on = load_workflow(path)["on"]
    triggers = [on] if isinstance(on, str) else list(on)
    assert "pull_request_target" not in triggers, path.name


def test_pr_report_permissions_are_least_privilege(pr_report):
    top = pr_report["permissions"]
    assert top in ({}, {"contents": "read"}), f"pr-report.yml: top-level permissions {top}"
    jobs = pr_report["jobs"]
    assert set(jobs) == {"changes", "report"}
    assert jobs["changes"]["permissions"] == {"contents": "read"}
    assert jobs["report"]["permissions"] == {"contents": "read", "pull-requests": "write"}


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


# The prediction-log retention workflow (prediction-log-retention.yml).

RETENTION = REPO / ".github/workflows/prediction-log-retention.yml"


def test_retention_runs_daily_and_by_hand():
    on = load_workflow(RETENTION)["on"]
    assert set(on) == {"schedule", "workflow_dispatch"}
    (cron,) = (entry["cron"] for entry in on["schedule"])
    minute, hour, *every = cron.split()
    assert every == ["*", "*", "*"], f"not daily: {cron}"
    assert minute.isdigit()
    assert hour.isdigit()


def test_retention_is_thin_least_privilege_and_gives_the_secret_to_one_step():
    workflow = load_workflow(RETENTION)
    assert workflow["permissions"] == {}
    assert workflow["concurrency"]["cancel-in-progress"] is False, "never cut a prune short"
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read"}
    steps = job["steps"]
    assert [s.get("uses", "").split("@")[0] or s["run"] for s in steps] == [
        "actions/checkout", "actions/setup-python", "make prune-log"
    ]  # fmt: skip
    assert steps[0]["with"]["persist-credentials"] is False
    assert steps[1]["with"]["python-version"] == "3.11"
    assert steps[2]["env"] == {"MODELOPS_LOG_URL": "${{ secrets.MODELOPS_LOG_URL }}"}
    text = RETENTION.read_text()
    assert text.count("secrets.") == 1, "the log's URL is the only secret, in one step's env"
    for step in steps[:2]:  # pinned exactly as ci.yml pins the same actions
        assert step["uses"] in (REPO / ".github/workflows/ci.yml").read_text()


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
    for path in ("params.yaml", "src/modelops/review/gates.py", "dvc.yaml", ".github/workflows/",
                 ".github/rulesets/", "Makefile"):  # fmt: skip
        assert owners.get(path), f"CODEOWNERS: no owner for {path}"


# The merge gate: repository rulesets in .github/rulesets/, in GitHub's import format
# (the body of POST /repos/{owner}/{repo}/rulesets; Settings > Rules > Rulesets > Import).

RULESETS = sorted((REPO / ".github/rulesets").glob("*.json"))
GITHUB_ACTIONS_APP = 15368  # the integration id of GitHub Actions on github.com
RULESET_FIELDS = {"name", "target", "enforcement", "conditions", "bypass_actors", "rules"}
# What GitHub's export adds and its import ignores.
EXPORT_FIELDS = {"id", "source", "source_type", "node_id", "created_at", "updated_at", "_links"}
# Rule type: (the parameters GitHub requires, the optional ones), each with its type.
RULES: dict[str, tuple[dict[str, type], dict[str, type]]] = {
    "creation": ({}, {}),
    "deletion": ({}, {}),
    "non_fast_forward": ({}, {}),
    "required_linear_history": ({}, {}),
    "required_signatures": ({}, {}),
    "pull_request": (
        {"dismiss_stale_reviews_on_push": bool, "require_code_owner_review": bool,
         "require_last_push_approval": bool, "required_approving_review_count": int,
         "required_review_thread_resolution": bool},
        {"allowed_merge_methods": list, "required_reviewers": list,
         "automatic_copilot_code_review_enabled": bool},
    ),
    "required_status_checks": (
        {"required_status_checks": list, "strict_required_status_checks_policy": bool},
        {"do_not_enforce_on_create": bool},
    ),
}  # fmt: skip


def load_ruleset(path: Path) -> dict:
    return json.loads(path.read_text())


def rules_of(ruleset: dict) -> dict[str, dict]:
    """Rule type -> its parameters ({} for rules without)."""
    return {rule["type"]: rule.get("parameters", {}) for rule in ruleset["rules"]}


def required_contexts(ruleset: dict) -> list[str]:
    checks = rules_of(ruleset).get("required_status_checks", {})
    return [check["context"] for check in checks.get("required_status_checks", [])]


def check_names() -> dict[str, list[tuple[str, str, dict]]]:
    """The check name of every job that reports on every pull request: its `name:`, or
    its id when it has none -> (workflow, job id, job). Workflows with a paths filter are
    left out (a skipped workflow never reports), and so are matrix jobs and computed names
    (their check names carry the matrix values)."""
    names: dict[str, list[tuple[str, str, dict]]] = {}
    for path in WORKFLOWS:
        workflow = load_workflow(path)
        on = workflow["on"]
        if not isinstance(on, dict):  # `on: pull_request` or `on: [push, pull_request]`
            on = dict.fromkeys([on] if isinstance(on, str) else on)
        triggers = on
        if "pull_request" not in triggers:
            continue
        if {"paths", "paths-ignore"} & set(triggers["pull_request"] or {}):
            continue
        for job_id, job in workflow["jobs"].items():
            name = job.get("name", job_id)
            if "matrix" in job.get("strategy", {}) or "${{" in name:
                continue
            names.setdefault(name, []).append((path.name, job_id, job))
    return names


def is_default_branch_ruleset(ruleset: dict) -> bool:
    return ruleset.get("target", "branch") == "branch" and "~DEFAULT_BRANCH" in (
        ruleset.get("conditions", {}).get("ref_name", {}).get("include", [])
    )


def test_there_is_a_ruleset_for_the_default_branch():
    assert RULESETS, ".github/rulesets/ holds no ruleset"
    assert any(is_default_branch_ruleset(load_ruleset(p)) for p in RULESETS)


@pytest.mark.parametrize("path", RULESETS, ids=lambda p: p.name)
def test_ruleset_is_in_githubs_format(path):
    ruleset = load_ruleset(path)
    assert isinstance(ruleset, dict)
    assert {"name", "enforcement", "rules"} <= set(ruleset) <= RULESET_FIELDS | EXPORT_FIELDS
    assert isinstance(ruleset["name"], str)
    assert ruleset["name"].strip()
    assert ruleset.get("target", "branch") in {"branch", "tag", "push"}
    assert ruleset["enforcement"] in {"active", "evaluate", "disabled"}
    for actor in ruleset.get("bypass_actors", []):
        assert actor["actor_type"] in {
            "Integration", "OrganizationAdmin", "RepositoryRole", "Team", "DeployKey"
        }  # fmt: skip
        assert actor.get("bypass_mode", "always") in {"always", "pull_request", "exempt"}
        assert actor.get("actor_id") is None or type(actor["actor_id"]) is int
    ref_name = ruleset["conditions"]["ref_name"]
    assert set(ref_name) == {"include", "exclude"}
    prefix = "refs/tags/" if ruleset.get("target") == "tag" else "refs/heads/"
    for pattern in ref_name["include"] + ref_name["exclude"]:
        # Patterns are full ref names; the two special values are ~DEFAULT_BRANCH and ~ALL.
        assert pattern in {"~DEFAULT_BRANCH", "~ALL"} or pattern.startswith(prefix), pattern

    types = [rule["type"] for rule in ruleset["rules"]]
    assert len(types) == len(set(types)), f"{path.name}: a rule appears twice"
    for rule in ruleset["rules"]:
        assert rule["type"] in RULES, f"{path.name}: unknown rule {rule['type']} (add it above)"
        assert set(rule) <= {"type", "parameters"}
        required, optional = RULES[rule["type"]]
        parameters = rule.get("parameters", {})
        assert set(required) <= set(parameters) <= set(required) | set(optional), rule["type"]
        for key, value in parameters.items():
            kind = {**required, **optional}[key]
            assert type(value) is kind, f"{path.name}: {rule['type']}.{key} is not {kind}"

    rules = rules_of(ruleset)
    if "pull_request" in rules:
        pull_request = rules["pull_request"]
        assert 0 <= pull_request["required_approving_review_count"] <= 10
        methods = pull_request.get("allowed_merge_methods", ["merge", "squash", "rebase"])
        assert methods
        assert set(methods) <= {"merge", "squash", "rebase"}
        if "required_linear_history" in rules:
            assert "merge" not in methods, "linear history forbids merge commits"
    for check in rules.get("required_status_checks", {}).get("required_status_checks", []):
        assert set(check) <= {"context", "integration_id"}
        assert isinstance(check["context"], str)
        assert check["context"]
        assert type(check.get("integration_id", 0)) is int


@pytest.mark.parametrize("path", RULESETS, ids=lambda p: p.name)
def test_required_checks_are_jobs_that_report_on_every_pull_request(path):
    """A required context that no job reports (a typo, a renamed job, a workflow with a
    paths filter) leaves every pull request at "Expected" and unmergeable."""
    ruleset = load_ruleset(path)
    names = check_names()
    checks = rules_of(ruleset).get("required_status_checks", {})
    for check in checks.get("required_status_checks", []):
        context = check["context"]
        assert context in names, f"{path.name}: no job reports {context!r}; jobs: {sorted(names)}"
        assert len(names[context]) == 1, f"{path.name}: {context!r} is ambiguous: {names[context]}"
        # Only GitHub Actions may report it, not any app or commit status of that name.
        assert check.get("integration_id") == GITHUB_ACTIONS_APP, context
        ((workflow, job_id, job),) = names[context]
        # A job skipped because a job it needs failed counts as passed: it must run anyway.
        if "needs" in job:
            condition = job.get("if", "")
            assert "!cancelled()" in condition or "always()" in condition, f"{workflow}/{job_id}"


def test_the_default_branch_requires_review_the_checks_and_linear_history():
    (ruleset,) = [r for p in RULESETS if is_default_branch_ruleset(r := load_ruleset(p))]
    assert ruleset["enforcement"] == "active"
    assert ruleset.get("bypass_actors", []) == [], "nobody bypasses the merge gate"
    rules = rules_of(ruleset)
    assert {"deletion", "non_fast_forward", "required_linear_history"} <= set(rules)
    review = rules["pull_request"]
    assert review["required_approving_review_count"] >= 1
    assert review["require_code_owner_review"] is True, "CODEOWNERS review the gates"
    assert review["dismiss_stale_reviews_on_push"] is True
    # The model report and every CI job, by the names they report.
    report = load_workflow(PR_REPORT)["jobs"]["report"]
    ci = load_workflow(REPO / ".github/workflows/ci.yml")["jobs"]
    expected = {report["name"]} | {job.get("name", job_id) for job_id, job in ci.items()}
    assert expected <= set(required_contexts(ruleset))
    # The report compares with the base branch's model: it must be the latest base.
    assert rules["required_status_checks"]["strict_required_status_checks_policy"] is True


def run_order(workflow: dict, job: str) -> list[str]:
    """The make targets a job's steps run, in order."""
    return [
        step["run"].split()[1]
        for step in workflow["jobs"][job]["steps"]
        if step.get("run", "").startswith("make ")
    ]


def test_release_chains_gates_registration_image_and_promotion_in_one_job():
    release = load_workflow(REPO / ".github/workflows/release.yml")
    assert release["on"]["push"]["branches"] == ["main"]
    assert release["concurrency"]["cancel-in-progress"] is False
    order = run_order(release, "release")
    assert order.index("gates") < order.index("release") < order.index("push-release")
    assert order.index("release") < order.index("image") < order.index("promote")
    assert order[-1] == "open-pr"
    opener = release["jobs"]["release"]["steps"][-1]
    assert "secrets.RELEASE_TOKEN || secrets.GITHUB_TOKEN" in opener["env"]["GH_TOKEN"]
    assert set(release["jobs"]["release"]["permissions"]) == {
        "contents", "packages", "pull-requests"
    }  # fmt: skip


def test_deploy_rolls_out_each_changed_environment_with_its_own_secret_then_records_it():
    deploy = load_workflow(REPO / ".github/workflows/deploy.yml")
    job = deploy["jobs"]["rollout"]
    assert job["environment"] == "${{ matrix.environment }}"
    assert job["concurrency"]["cancel-in-progress"] is False
    assert job["strategy"]["max-parallel"] == 1
    order = run_order(deploy, "rollout")
    assert order == ["setup", "check-state", "k8s-deploy", "record-stage", "push-release"]
    with_kubeconfig = [s for s in job["steps"] if "secrets.KUBECONFIG" in json.dumps(s)]
    assert [s["run"].split()[1] for s in with_kubeconfig] == ["k8s-deploy"]


def test_rollback_is_one_dispatch_per_release_environment():
    rollback = load_workflow(REPO / ".github/workflows/rollback.yml")
    choice = rollback["on"]["workflow_dispatch"]["inputs"]["environment"]
    assert choice["options"] == ["staging", "production"]
    assert run_order(rollback, "rollback") == ["setup", "rollback", "open-pr"]


def test_environments_changed_lists_the_release_stages_a_push_changes(tmp_path):
    env = os.environ | {
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    }  # fmt: skip

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=tmp_path, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    folder = tmp_path / "deploy/environments"
    folder.mkdir(parents=True)
    for name in ("local", "staging", "production"):
        (folder / f"{name}.yaml").write_text("champion: m:latest\n")
    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "states")
    before = git("rev-parse", "HEAD")
    (folder / "production.yaml").write_text("champion: m:v1.0.0\n")
    (folder / "local.yaml").write_text("champion: m:v1.0.0\n")
    git("commit", "-qam", "promote")
    assert changed(tmp_path, before, ["staging", "production"]) == ["production"]


def test_a_promotion_pull_request_is_validated_then_reported_per_environment():
    promotion = load_workflow(REPO / ".github/workflows/promotion.yml")
    assert promotion["on"]["pull_request"]["paths"] == ["deploy/environments/**"]
    job = promotion["jobs"]["report"]
    assert job["strategy"]["matrix"]["environment"].startswith("${{ fromJSON(")
    order = run_order(promotion, "report")
    assert order == ["setup", "check-state", "repro", "promotion-report", "comment"]
    comment = job["steps"][-1]
    assert "head.repo.full_name == github.repository" in comment["if"]


def test_monitor_runs_daily_and_by_hand_then_uploads_and_notifies():
    monitor = load_workflow(REPO / ".github/workflows/monitor.yml")
    assert set(monitor["on"]) == {"schedule", "workflow_dispatch"}
    job = monitor["jobs"]["monitor"]
    assert job["environment"] == "monitoring"  # the log's URL is that environment's secret
    assert job["permissions"] == {"contents": "read", "issues": "write", "actions": "write"}
    assert run_order(monitor, "monitor") == ["setup", "monitor", "notify"]
    secret_steps = [s for s in job["steps"] if "secrets.MODELOPS_LOG_URL" in json.dumps(s)]
    assert [s["run"] for s in secret_steps] == ["make monitor"]


def test_retrain_reports_every_required_check_itself_then_merges_only_when_decided():
    """A pull request opened with GITHUB_TOKEN triggers no workflow: the retrain job runs
    each check the ruleset requires and posts it as a status of that very name."""
    from modelops.monitoring.notify import RETRAIN_WORKFLOW

    retrain = load_workflow(REPO / ".github/workflows/retrain.yml")
    assert (REPO / ".github/workflows" / RETRAIN_WORKFLOW).exists()  # what monitor dispatches
    assert set(retrain["on"]) == {"schedule", "workflow_dispatch"}
    assert "reason" in retrain["on"]["workflow_dispatch"]["inputs"]
    job = retrain["jobs"]["retrain"]
    order = run_order(retrain, "retrain")
    assert order[:3] == ["setup", "retrain-branch", "new-data"]
    assert order.index("pr") < order.index("retrain-commit") < order.index("open-pr")
    statuses = [s for s in job["steps"] if s.get("run") == "make status"]
    contexts = [s["env"]["CONTEXT"] for s in statuses]
    ruleset = json.loads((REPO / ".github/rulesets/main.json").read_text())
    required = [
        check["context"]
        for rule in ruleset["rules"]
        if rule["type"] == "required_status_checks"
        for check in rule["parameters"]["required_status_checks"]
    ]
    assert sorted(contexts) == sorted(required)
    steps = job["steps"]
    for status in statuses:
        outcome = status["env"].get("OUTCOME", "")
        if outcome:  # the step whose outcome it reports runs before it, and may fail
            step_id = re.search(r"steps\.([a-z-]+)\.outcome", outcome)[1]
            source = next(s for s in steps if s.get("id") == step_id)
            assert steps.index(source) < steps.index(status)
            assert source["continue-on-error"] is True
    merge = next(s for s in steps if s.get("run") == "make automerge")
    assert merge["if"] == "${{ steps.decide.outputs.automerge == 'true' }}"
    assert steps.index(next(s for s in steps if s.get("id") == "decide")) < steps.index(merge)
    assert set(job["permissions"]) == {"contents", "pull-requests", "statuses"}
    assert job["environment"] == "retraining"
    launch = retrain["jobs"]["launch"]
    assert launch["if"] == "${{ needs.settings.outputs.runner == 'cml' }}"
    assert run_order(retrain, "launch") == ["cml-runner"]
