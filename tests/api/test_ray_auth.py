"""The service against a Ray head with token authentication on (Ray >= 2.50's default for the clusters it
starts): with the cluster's token it is ready and its jobs run; without it, or with a wrong one, /readyz
and every submission say so instead of "ready"."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
from service_harness import REPO, Server, job_status, ray_env, tiny_spec, wait_for, wait_ray_ready, write_jsonl

from api.ray_jobs import RayJobs, RayUnavailable

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def auth_head():
    """A private head (free ports, its own temp dir) started with RAY_AUTH_MODE=token and its token."""
    from tests.ray_head import PrivateRayHead

    token = secrets.token_hex(16)
    tmp = Path(tempfile.mkdtemp(prefix="cr-auth-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, HOME=str(tmp),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    head = PrivateRayHead(tmp, num_cpus=1, env=env)  # its own readiness wait would send no token
    try:
        wait_ray_ready(head.dashboard, token)
        yield {"dashboard": head.dashboard, "token": token}
    finally:
        head.stop(grace=5)
        shutil.rmtree(tmp, ignore_errors=True)


def test_missing_or_wrong_token_is_named(auth_head):
    for token, says in ((None, "token authentication on and this service sent no token"),
                        ("wrong", "rejected this service's token")):
        ray = RayJobs(auth_head["dashboard"], token)
        with pytest.raises(RayUnavailable, match=says):
            ray.ping()
        with pytest.raises(RayUnavailable, match=says):
            ray.submit(entrypoint="true")
    assert RayJobs(auth_head["dashboard"], auth_head["token"]).ping().startswith("2.")


def test_service_with_the_token_is_ready_and_runs_jobs(auth_head, tmp_path):
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(auth_head["token"] + "\n")  # where `ray start` keeps it
    env = ray_env(tmp_path, auth_head["dashboard"], HOME=str(home))
    write_jsonl(tmp_path / "data" / "in.jsonl", ["x" * (i * 50) for i in range(5)])
    server = Server(env, tmp_path / "server.log").start()
    try:
        with server.client() as c:
            ready = c.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"]["ray"].startswith("ok (ray 2."), ready.text
            job_id = c.post("/v1/jobs", json=tiny_spec(tmp_path / "data", "auth", "out/auth")).json()["id"]
            done = wait_for(lambda: job_status(c, job_id, {"succeeded", "failed", "cancelled"}), what="job")
            assert done["status"] == "succeeded", (done["message"], server.log_path.read_text()[-2000:])
            assert done["progress"]["output"]["docs"] == 3
    finally:
        server.stop()
    env["HOME"] = str(tmp_path / "empty-home")  # no token anywhere: not ready, and submissions say why
    server = Server(env, tmp_path / "server2.log").start()
    try:
        with server.client() as c:
            ready = c.get("/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "not ready"
            assert "sent no token" in ready.json()["checks"]["ray"] and ready.json()["checks"]["store"] == "ok"
            r = c.post("/v1/jobs", json=tiny_spec(tmp_path / "data", "auth2", "out/auth2"))
            assert r.status_code == 503 and "sent no token" in r.json()["detail"], r.text
    finally:
        server.stop()
