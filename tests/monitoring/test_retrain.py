"""What the retrain and monitor workflows decide: data-only changes, merging by itself,
the "model report" status, and the monitoring issue and retraining dispatch (through a
recording stand-in for the GitHub CLI)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from modelops import paths
from modelops.config import RetrainSettings
from modelops.monitoring import notify, retrain
from tests.conftest import with_updates
from tests.release.support import git

DVC_YAML = {
    "stages": {
        "train": {
            "cmd": "python train.py",
            "outs": [{"models/model.joblib": {"persist": True}}],
            "metrics": [{"metrics/train.json": {"cache": False}}],
        }
    }
}


@pytest.fixture
def repo(tmp_path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    (tmp_path / "src").mkdir()
    (tmp_path / "src/code.py").write_text("x = 1\n")
    (tmp_path / ".gitignore").write_text("reports/\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    git(tmp_path, "checkout", "-q", "-b", "retrain/1")
    return tmp_path


def commit(repo: Path, files: dict[str, str], verdict: str = "PASS") -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "retrain")
    (repo / paths.VERDICT).parent.mkdir(parents=True, exist_ok=True)
    failed = [] if verdict == "PASS" else ["champion:roc_auc"]
    (repo / paths.VERDICT).write_text(json.dumps({"verdict": verdict, "failed": failed}))


DATA_ONLY = {"data/raw.dvc": "outs: []\n", "dvc.lock": "stages: {}\n", "metrics/train.json": "{}"}


def test_a_data_and_outputs_change_is_data_only_and_code_is_not(repo):
    commit(repo, DATA_ONLY)
    assert retrain.not_data(repo, "main") == []
    commit(repo, {"src/code.py": "x = 2\n", "params.yaml": "a: 1\n"})
    assert retrain.not_data(repo, "main") == ["params.yaml", "src/code.py"]


@pytest.mark.parametrize(
    ("automerge", "verdict", "files", "merge", "why"),
    [
        (True, "PASS", DATA_ONLY, True, "every gate passed and only data changed"),
        (False, "PASS", DATA_ONLY, False, "automerge is false"),
        (True, "FAIL", DATA_ONLY, False, "the gates did not pass (champion:roc_auc)"),
        (
            True,
            "PASS",
            DATA_ONLY | {"src/code.py": "x = 3\n"},
            False,
            "not data only (src/code.py)",
        ),
    ],
)
def test_a_retraining_pull_request_merges_by_itself_only_when_allowed_passing_and_data_only(
    repo, settings, automerge, verdict, files, merge, why
):
    commit(repo, files, verdict)
    chosen = with_updates(settings, monitoring={"retrain": RetrainSettings(automerge=automerge)})
    decision = retrain.decide(repo, chosen, "main")
    assert decision.merge is merge
    assert why in decision.why


def test_the_model_report_status_follows_the_verdict(repo):
    commit(repo, DATA_ONLY, "FAIL")
    status = retrain.model_report_status(repo)
    assert status == {
        "state": "failure",
        "context": "model report",
        "description": "failed: champion:roc_auc",
    }
    commit(repo, {"data/raw.dvc": "outs: [2]\n"}, "PASS")
    assert retrain.model_report_status(repo)["state"] == "success"


@pytest.fixture
def fake_gh(tmp_path, monkeypatch):
    """A `gh` on PATH that records its arguments and answers `issue list` from a file."""
    calls, issues = tmp_path / "calls.jsonl", tmp_path / "issues.json"
    issues.write_text("[]")
    script = tmp_path / "bin/gh"
    script.parent.mkdir()
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "if sys.argv[1:3] == ['issue', 'list']:\n"
        f"    print(open({str(issues)!r}).read())\n"
        "elif sys.argv[1:3] == ['issue', 'create']:\n"
        "    print('https://github.com/o/r/issues/7')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")

    def recorded() -> list[list[str]]:
        return [json.loads(line) for line in calls.read_text().splitlines()]

    return issues, recorded


def reports(tmp_path, level: str, reasons: list[str]) -> Path:
    folder = tmp_path / "monitoring"
    folder.mkdir(exist_ok=True)
    (folder / "verdict.json").write_text(json.dumps({"level": level, "reasons": reasons}))
    (folder / "report.md").write_text(f"# Monitoring: {level}\n")
    return folder


def test_ok_opens_nothing(tmp_path, settings, fake_gh):
    assert notify.act(settings, reports(tmp_path, "ok", [])) == [
        "verdict ok: no issue, no retraining"
    ]
    assert not (tmp_path / "calls.jsonl").exists()


def test_retrain_opens_one_issue_then_updates_it_and_dispatches_retraining(
    tmp_path, settings, fake_gh
):
    issues, recorded = fake_gh
    folder = reports(tmp_path, "retrain", ["decay: m:v1 ROC-AUC 0.70 below 0.86"])
    done = notify.act(settings, folder)
    assert done[0].startswith("opened https://github.com/o/r/issues/7")
    calls = recorded()
    create = next(c for c in calls if c[:2] == ["issue", "create"])
    assert create[create.index("--label") + 1] == "monitoring"
    assert create[create.index("--body-file") + 1] == str(folder / "report.md")
    assert calls[-1] == [
        "workflow", "run", "retrain.yml", "-f", "reason=decay: m:v1 ROC-AUC 0.70 below 0.86",
    ]  # fmt: skip
    issues.write_text(json.dumps([{"number": 9}, {"number": 4}]))
    warned = notify.act(settings, reports(tmp_path, "warn", ["control charts: latest window"]))
    assert warned == [f"updated issue #4: Monitoring: {settings.model.name} warns"]
    assert recorded()[-1][:3] == ["issue", "edit", "4"]
    assert sum(c[:2] == ["workflow", "run"] for c in recorded()) == 1  # warn: no retraining


def test_a_status_is_posted_on_head_linking_the_run(repo, fake_gh, monkeypatch):
    _, recorded = fake_gh
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GITHUB_REPOSITORY", "o/r")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    head = git(repo, "rev-parse", "HEAD")
    assert notify.post_status("lint", "failure", "lint: failure") == f"lint: failure on {head[:12]}"
    call = recorded()[-1]
    assert call[:4] == ["api", "--method", "POST", f"repos/o/r/statuses/{head}"]
    fields = dict(arg.split("=", 1) for arg in call[4:] if arg != "-f")
    assert fields["context"] == "lint"
    assert fields["state"] == "failure"
    assert fields["target_url"] == "https://github.com/o/r/actions/runs/42"
    with pytest.raises(ValueError, match="status state 'skipped'"):
        notify.post_status("test", "skipped", "")
