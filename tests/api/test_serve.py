"""`curator serve` (api.serve.main): starts uvicorn with the environment's settings; with no token
configured it generates one, prints it once, and that token (only) is accepted."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
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
