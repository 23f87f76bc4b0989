"""Fixtures of the job-service tests (helpers live in service_harness.py)."""

from __future__ import annotations

import pytest
from service_harness import Server, base_env, drop_pg_schema, require_pg


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def plain_server(request, tmp_path_factory):
    """A server without a reachable Ray, over each store backend: everything but running jobs."""
    backend = request.param
    if backend == "postgresql":
        require_pg()
    tmp = tmp_path_factory.mktemp(f"api-{backend}")
    env = base_env(tmp, backend)
    server = Server(env, tmp / "server.log").start()
    server.tmp = tmp
    server.data = tmp / "data"
    server.backend = backend
    yield server
    server.stop()
    if backend == "postgresql":
        drop_pg_schema(env["CURATOR_DB_SCHEMA"])
