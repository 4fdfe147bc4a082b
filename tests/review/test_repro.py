"""The recorded `dvc repro` of the PR check: parsing its output, and what `run` leaves."""

from __future__ import annotations

import subprocess

from modelops import paths
from modelops.io import read_json, write_json
from modelops.review import repro

FAILED_TRAIN = (
    "Running stage 'split':\n"
    "> python pipelines/split.py\n"
    "Running stage 'train':\n"
    "> python pipelines/train.py\n"
    "[train] fitting on 10 rows\n"
    "[train] ERROR: model.params: HistGradientBoostingClassifier does not accept ['x']\n"
    "[train] ERROR: stage 'train' failed; its previous outputs are unchanged\n"
    "ERROR: failed to reproduce 'train': failed to run: python pipelines/train.py\n"
)


def test_failed_stage_and_its_own_error_lines():
    got = repro.parse(FAILED_TRAIN, 1)
    assert got["status"] == "failed"
    assert got["exit_code"] == 1
    assert got["stages_run"] == ["split", "train"]
    assert got["failed_stage"] == "train"
    assert got["errors"] == [
        "model.params: HistGradientBoostingClassifier does not accept ['x']",
        "stage 'train' failed; its previous outputs are unchanged",
    ]


def test_continuation_lines_stop_at_the_next_log_or_dvc_line():
    output = (
        "[validate] ERROR: data/raw: 2 problems\n"
        "  - a: 3 rows\n"
        "  - b: 1 row\n"
        "[validate] done\n"
        "  not part of the message\n"
        "ERROR: failed to reproduce 'validate'\n"
    )
    message = "data/raw: 2 problems\n  - a: 3 rows\n  - b: 1 row"
    assert repro.stage_errors(output, "validate") == [message]
    assert repro.stage_errors(output, "train") == []


def test_without_stage_messages_dvcs_own_errors_are_kept():
    output = "ERROR: failed to reproduce 'train': output 'x' does not exist\n"
    got = repro.parse(output, 1)
    assert got["failed_stage"] == "train"
    assert got["errors"] == [output.strip()]
    other = repro.parse("ERROR: unexpected error - dvc.yaml is invalid\n", 255)
    assert other["failed_stage"] is None
    assert other["errors"] == ["ERROR: unexpected error - dvc.yaml is invalid"]


def test_a_clean_run_passes_with_no_errors():
    got = repro.parse("Stage 'validate' didn't change, skipping\nRunning stage 'evaluate':\n", 0)
    assert got == {"status": "passed", "exit_code": 0, "stages_run": ["evaluate"],
                   "failed_stage": None, "errors": []}  # fmt: skip


def test_run_removes_stale_results_and_records_the_outcome(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for stale in repro.STALE:
        write_json({"old": True}, stale)
    pulled = subprocess.CompletedProcess([], 1, "", "ERROR: no remote\nERROR: cannot pull\n")
    calls = []

    def dvc(*args, **kwargs):
        calls.append(("dvc", args, kwargs))
        return pulled

    def dvc_streamed(*args):
        calls.append(("streamed", args, {}))
        return FAILED_TRAIN, 1

    monkeypatch.setattr(repro, "dvc", dvc)
    monkeypatch.setattr(repro, "dvc_streamed", dvc_streamed)
    outcome = repro.run(args=("--force",))
    assert [(name, args[0]) for name, args, _ in calls] == [("dvc", "pull"), ("streamed", "repro")]
    assert calls[0][2] == {"check": False}  # a failed pull only means: rebuild
    assert calls[1][1] == ("repro", "--force")
    assert not [p for p in repro.STALE if p.exists()]
    assert read_json(paths.PIPELINE_RUN) == outcome
    assert outcome["failed_stage"] == "train"
    assert "could not pull outputs, rebuilding them: ERROR: cannot pull" in capsys.readouterr().err
