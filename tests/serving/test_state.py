"""Desired-state files: validation names the field; nothing partial is accepted."""

from __future__ import annotations

import pytest

from modelops.serving.state import Automation, DesiredStateError, parse_state

KNOWN = {
    "model:aaa": "model:aaa",
    "model:bbb": "model:bbb",
    "model:latest": "model:bbb",
}


def resolve(tag: str) -> str:
    if tag not in KNOWN:
        raise LookupError(f"model '{tag}' is not in the BentoML model store")
    return KNOWN[tag]


def parse(text: str):
    return parse_state(text, "deploy/environments/test.yaml", resolve)


def test_a_full_state_parses_and_latest_resolves_to_a_version():
    state = parse(
        "champion: model:latest\nchallenger: model:aaa\n"
        "strategy: {type: canary, percent: 10}\nautomation: full\n"
        "thresholds: {decline: 0.5}\n"
    )
    assert state.champion == "model:bbb"
    assert state.challenger == "model:aaa"
    assert state.strategy.percent == 10
    assert state.automation == Automation.FULL
    assert state.thresholds.decline == 0.5
    assert state.thresholds.review is None
    assert state.versions == ["model:bbb", "model:aaa"]


def test_the_defaults_are_single_and_partial():
    state = parse("champion: model:aaa\n")
    assert state.strategy.type == "single"
    assert state.automation == Automation.PARTIAL


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("champion: [\n", "not valid YAML"),
        ("- a\n", "expected a mapping"),
        ("challenger: model:aaa\n", "champion: Field required"),
        ("champion: model:aaa\nstrategy: {type: rollout}\n", "strategy"),
        (
            "champion: model:aaa\nchallenger: model:bbb\nstrategy: {type: canary, percent: 150}\n",
            "strategy.canary.percent",
        ),
        (
            "champion: model:aaa\nchallenger: model:bbb\nstrategy: {type: canary}\n",
            "strategy.canary.percent: Field required",
        ),
        (
            "champion: model:aaa\nstrategy: {type: shadow}\n",
            "strategy shadow needs a challenger",
        ),
        ("champion: model:aaa\nchallenger: model:bbb\n", "strategy is single"),
        ("champion: model:aaa\nautomation: autopilot\n", "automation"),
        (
            "champion: model:aaa\nthresholds: {review: 0.9, decline: 0.1}\n",
            "review must not exceed decline",
        ),
        ("champion: model:aaa\ncolour: blue\n", "colour: Extra inputs are not permitted"),
        (
            "champion: model:zzz\n",
            "champion: model 'model:zzz' is not in the BentoML model store",
        ),
        (
            "champion: model:aaa\nchallenger: model:zzz\nstrategy: {type: shadow}\n",
            "challenger: model",
        ),
        (
            "champion: model:latest\nchallenger: model:bbb\nstrategy: {type: shadow}\n",
            "challenger: is the same model as champion",
        ),
    ],
)
def test_bad_files_fail_with_a_message_naming_the_field(text, names):
    with pytest.raises(DesiredStateError) as error:
        parse(text)
    assert names in str(error.value)
    assert "deploy/environments/test.yaml" in str(error.value)


def test_the_committed_environment_files_are_valid(tmp_path):
    from pathlib import Path

    import yaml

    from modelops.serving.state import DesiredState

    files = sorted(Path(__file__).resolve().parents[2].glob("deploy/environments/*.yaml"))
    assert files
    for file in files:
        DesiredState.model_validate(yaml.safe_load(file.read_text()))
