"""Fixtures shared by the serving tests."""

import pytest

from modelops.serving.contract import ApiNames


@pytest.fixture(scope="module")
def names(settings):
    """The API's names from the configured words (the example's: transaction...)."""
    return ApiNames.from_words(settings.words)
