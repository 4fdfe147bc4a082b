"""Fixtures shared by the serving tests.

PostgreSQL: `make postgres` starts Debian's server (.ci/run does); pytest-postgresql
creates and drops a database per test. Without a server the tests that need it skip with
that reason, except under MODELOPS_REQUIRE_POSTGRES=1 (CI), where they fail.
"""

import os

import psycopg
import pytest
from pytest_postgresql import factories

from modelops.serving.contract import ApiNames

PG = {"host": "127.0.0.1", "port": 5432, "user": "modelops", "password": "modelops"}
# Database names of this run's own: another suite may run at the same time (the adoption
# tests run the adopted copies' suites side by side).
DATABASE = os.environ.get("MODELOPS_TEST_DATABASE", "modelops")
postgresql_server = factories.postgresql_noproc(**PG, dbname=f"{DATABASE}_tests")
postgresql_database = factories.postgresql("postgresql_server", dbname=f"{DATABASE}_test")


@pytest.fixture
def postgres_url(request) -> str:
    """A fresh database on the local PostgreSQL server, as a SQLAlchemy URL."""
    try:
        psycopg.connect(dbname="postgres", connect_timeout=3, **PG).close()
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not running at {PG['host']}:{PG['port']} (`make postgres`): {exc}"
        if os.environ.get("MODELOPS_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    info = request.getfixturevalue("postgresql_database").info
    return (
        f"postgresql+psycopg://{info.user}:{PG['password']}@{info.host}:{info.port}/{info.dbname}"
    )


@pytest.fixture(scope="module")
def names(settings):
    """The API's names from the configured words (the example's: transaction...)."""
    return ApiNames.from_words(settings.words)
