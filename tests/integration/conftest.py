"""The adoption tests run last, and their adopted copies' work starts as soon as the
session knows it will run them: it then runs beside the rest of the suite, which is
mostly one busy process on a machine with more cores."""

from __future__ import annotations

import pytest

from modelops.config import load_settings
from tests.conftest import PARAMS

ADOPTION_TESTS = "tests/integration/test_adopt.py::"


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    adopting = [item for item in items if item.nodeid.startswith(ADOPTION_TESTS)]
    runs = any("adopted" in item.fixturenames for item in adopting)
    if not runs or config.option.collectonly:
        return
    if load_settings(PARAMS).data.source != "simulator":  # an adopted copy: they skip
        return
    moved = set(adopting)
    items[:] = [item for item in items if item not in moved] + adopting
    from tests.integration import test_adopt

    test_adopt.start(config)
