"""`curator serve` (api.serve.main): starts uvicorn with the environment's settings; with no token
configured it generates one, prints it once, and that token (only) is accepted; with no Ray address it
starts a local head that works on a machine where Ray's default ports are taken."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest
from service_harness import REPO, free_port


def test_curator_serve_generates_a_token(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CURATOR_") and k != "RAY_ADDRESS"}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "CURATOR_STATE_DIR": str(tmp_path / "state"),
            "CURATOR_DATA_ROOTS": str(tmp_path),
            "CURATOR_RAY_ADDRESS": "http://127.0.0.1:9",
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "curator", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        token = None
        deadline = time.time() + 60
        while token is None and time.time() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "curator serve exited"
            if "use this token for this run:" in line:
                token = line.rsplit(":", 1)[1].strip()
        assert token and len(token) >= 24
        url = f"http://127.0.0.1:{port}"
        while time.time() < deadline:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert httpx.get(url + "/v1/jobs", headers={"Authorization": f"Bearer {token}"}).json() == {
            "jobs": [],
            "next_cursor": None,
        }
        assert httpx.get(url + "/v1/jobs", headers={"Authorization": "Bearer " + token[:-1]}).status_code == 401
        assert (tmp_path / "state" / "jobs.db").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _listen_on_6379():
    """Hold Ray's default GCS port, as Redis does on these machines (None if something holds it already)."""
    import socket

    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 6379))
        s.listen()
        return s
    except OSError:
        s.close()
        return None


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_serve_without_a_ray_address_starts_a_head_that_works(tmp_path):
    """A fresh machine: port 6379 taken, no RAY_ADDRESS, no Ray token yet. `curator serve` starts a head
    on free ports with token auth on (a new token saved to $HOME/.ray/auth_token, where Ray's clients look),
    reports ready, and runs a job; the head is stopped here by its temp dir, never with `ray stop`."""
    import tempfile

    from service_harness import TOKEN, job_status, kill_processes_using, tiny_spec, wait_for, write_jsonl

    blocker = _listen_on_6379()
    raytmp = tempfile.mkdtemp(prefix="cr-serve-")  # short: Ray's socket paths live below it
    port, dash = free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CURATOR_", "RAY_")) or k == "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"}
    env.update(
        {
            "HOME": str(tmp_path / "home"),
            "RAY_TMPDIR": raytmp,
            "PYTHONPATH": str(REPO),
            "CURATOR_STATE_DIR": str(tmp_path / "state"),
            "CURATOR_DATA_ROOTS": str(tmp_path / "data"),
            "CURATOR_TOKENS": f"alice:{TOKEN}",
            "CURATOR_POLL_INTERVAL_S": "0.5",
        }
    )
    write_jsonl(tmp_path / "data" / "in.jsonl", ["x" * (i * 50) for i in range(5)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "curator", "serve", "--port", str(port), "--dashboard-port", str(dash),
         "--num-cpus", "1", "--log-level", "warning"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = []
        while not any("curator serve: http://" in ln for ln in lines):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "curator serve exited:\n" + "".join(lines)
            lines.append(line)
        assert f"Ray jobs at http://127.0.0.1:{dash}" in lines[-1]
        token_file = tmp_path / "home" / ".ray" / "auth_token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        r = httpx.get(f"http://127.0.0.1:{dash}/api/version")
        assert r.status_code == 401  # the head asks for the token
        auth = {"Authorization": f"Bearer {token_file.read_text()}"}
        r = httpx.get(f"http://127.0.0.1:{dash}/api/version", headers=auth)
        assert r.status_code == 200
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
            def ready():  # uvicorn starts listening a moment after the line above
                try:
                    r = c.get("/readyz")
                except httpx.HTTPError:
                    return None
                return r if r.status_code == 200 else None

            ready = wait_for(ready, timeout=60, what="ready")
            assert ready.json()["checks"]["ray"].startswith("ok (ray 2.")
            job_id = c.post("/v1/jobs", json=tiny_spec(tmp_path / "data", "serve", "out/serve")).json()["id"]
            done = wait_for(lambda: job_status(c, job_id, {"succeeded", "failed", "cancelled"}), what="job")
            assert done["status"] == "succeeded", done["message"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        kill_processes_using(raytmp)
        shutil.rmtree(raytmp, ignore_errors=True)
        if blocker is not None:
            blocker.close()
