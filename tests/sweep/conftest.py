"""Fixtures of the sweep tests: a real PostgreSQL server for the shared work queue."""

from __future__ import annotations

import pytest

from postgres_server import PostgresServer, driver, find_bindir, server_account


@pytest.fixture(scope="session")
def postgresql_server():
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in $PG_BINDIR, on PATH or in "
            "/usr/lib/postgresql/*/bin; install them with: apt-get install -y postgresql (.ci/run does)"
        )
    driver()  # fail early and clearly without psycopg
    server = PostgresServer(bindir, server_account())
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def postgresql_url(postgresql_server) -> str:
    """A fresh, empty database: postgresql+psycopg://mnistgan:PASSWORD@127.0.0.1:PORT/sweep_N."""
    return postgresql_server.create_database()
