"""Test fixtures shared by the whole suite.

One local Ray cluster per test session: ``ray start --head`` in a temporary folder (so the job
submission path, ``ray job submit``, is real too), stopped at the end. Tests that need Ray take the
``ray_cluster`` fixture (or ``ray_address`` for the dashboard URL).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_head():
    """Start a local Ray head (GCS + dashboard/job server) for the session; yield its addresses."""
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    tmp = Path(tempfile.mkdtemp(prefix="curator-ray-"))
    gcs_port, dash_port = _free_port(), _free_port()
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [
        ray_bin, "start", "--head", f"--port={gcs_port}", "--num-cpus=2",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}",
        f"--temp-dir={tmp}", "--include-dashboard=true", "--disable-usage-stats",
    ]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    addresses = {
        "gcs": f"127.0.0.1:{gcs_port}",
        "dashboard": f"http://127.0.0.1:{dash_port}",
        "temp_dir": str(tmp),
    }
    # wait for the job server to answer
    import urllib.request

    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(addresses["dashboard"] + "/api/version", timeout=2)
            break
        except Exception:
            time.sleep(0.5)
    try:
        yield addresses
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_cluster(ray_head):
    """Connect this test process to the session's Ray head."""
    import ray

    if not ray.is_initialized():
        ray.init(address=ray_head["gcs"], log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    yield ray_head
    # the head is stopped by ray_head; disconnecting here keeps later fixtures simple
