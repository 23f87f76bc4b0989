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


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def ray_server(request, ray_head, tmp_path_factory):
    """A server over the session's Ray cluster, over each store backend; jobs run the real `curator run`.
    Tests that need only one backend take ``@pytest.mark.parametrize("ray_server", ["sqlite"], indirect=True)``."""
    from service_harness import REPO, TINY_TEXTS, ray_env, write_jsonl

    backend = request.param
    if backend == "postgresql":
        require_pg()
    tmp = tmp_path_factory.mktemp(f"api-ray-{backend}")
    env = ray_env(
        tmp,
        ray_head["dashboard"],
        backend,
        CURATOR_MAX_ACTIVE_JOBS_PER_TOKEN="3",
        CURATOR_DATA_ROOTS=f"{tmp / 'data'},{REPO / 'examples'}",
        CURATOR_PIPELINES_DIR=str(REPO / "pipelines"),
    )
    write_jsonl(tmp / "data" / "in.jsonl", TINY_TEXTS)
    server = Server(env, tmp / "server.log").start()
    server.tmp, server.data, server.gates, server.backend = tmp, tmp / "data", tmp / "gates", backend
    yield server
    with server.client() as c:  # leave no gated job waiting on the cluster
        for status in ("pending", "running"):
            for job in c.get("/v1/jobs", params={"status": status}).json()["jobs"]:
                c.post(f"/v1/jobs/{job['id']}/cancel")
    server.stop()
    if backend == "postgresql":
        drop_pg_schema(env["CURATOR_DB_SCHEMA"])


@pytest.fixture(scope="session")
def finished_job(ray_server):
    """Submit the tiny spec over HTTP and wait until it succeeded; returns the job's detail."""
    from service_harness import job_status, tiny_spec, wait_for

    with ray_server.client() as c:
        r = c.post(
            "/v1/jobs",
            json=tiny_spec(ray_server.data, "tiny", "out/tiny"),
            headers={"Idempotency-Key": "k-1"},
        )
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        detail = wait_for(lambda: job_status(c, job_id, {"succeeded", "failed", "cancelled"}), what="job to finish")
        logs = c.get(f"/v1/jobs/{job_id}/logs", params={"follow": "false"}).text
    assert detail["status"] == "succeeded", (detail["message"], logs[-3000:], ray_server.log_path.read_text()[-2000:])
    return detail
