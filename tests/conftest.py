"""Test fixtures shared by the whole suite.

One local Ray cluster per test session: ``ray start --head`` in a temporary folder (so the job
submission path, ``ray job submit``, is real too), stopped at the end. Tests that need Ray take the
``ray_cluster`` fixture (or ``ray_address`` for the dashboard URL).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Ray >= 2.5x turns on token auth for a new local cluster by default and keeps the token in
# ~/.ray/auth_token, which then also applies to every later `ray start` on the machine. The test clusters
# are private to this machine's loopback: keep them unauthenticated so every client in the suite (the
# driver, `ray job submit`, the job service's JobSubmissionClient) behaves the same on a fresh machine.
os.environ["RAY_AUTH_MODE"] = "disabled"


@pytest.fixture(scope="session")
def ray_head():
    """Start a private local Ray head (GCS + dashboard/job server) for the session; yield its addresses."""
    from curator.ray_head import PrivateRayHead

    tmp = Path(tempfile.mkdtemp(prefix="curator-ray-"))
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    try:
        with PrivateRayHead(tmp, num_cpus=2, env=env) as head:
            try:
                yield {"gcs": head.gcs, "dashboard": head.dashboard, "temp_dir": str(tmp)}
            finally:
                try:
                    import ray

                    ray.shutdown()
                except Exception:  # noqa: BLE001
                    pass
    finally:
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
