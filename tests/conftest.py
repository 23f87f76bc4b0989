"""Test fixtures shared by the whole suite.

One local Ray cluster per test session: ``ray start --head`` in a temporary folder (so the job
submission path, ``ray job submit``, is real too), stopped at the end. Tests that need Ray take the
``ray_cluster`` fixture (or ``ray_address`` for the dashboard URL).

Hypothesis runs under the ``ci`` profile unless ``HYPOTHESIS_PROFILE`` names another: derandomized (the
same examples every run, so a red CI run reproduces) with no deadline (a loaded 2-core machine is slow);
``HYPOTHESIS_PROFILE=explore`` draws new random examples, ten times as many, to look for bugs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=1000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A real S3 API (moto in server mode) for the object-store tests. Its address is fixed now, before any Ray
# head starts, so every process of the session (Ray workers included) sees the same endpoint and keys.
S3_PORT = _free_port()
os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}", "AWS_ACCESS_KEY_ID": "testing",
                   "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})

# Ray >= 2.5x turns on token auth for a new local cluster by default and keeps the token in
# ~/.ray/auth_token, which then also applies to every later `ray start` on the machine. The test clusters
# are private to this machine's loopback: keep them unauthenticated so every client in the suite (the
# driver, `ray job submit`, the job service's JobSubmissionClient) behaves the same on a fresh machine.
os.environ["RAY_AUTH_MODE"] = "disabled"


@pytest.fixture(scope="session")
def s3_server():
    """``moto_server`` on 127.0.0.1 for the session; yields its endpoint URL."""
    moto = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    log = open(Path(tempfile.gettempdir()) / f"moto-{S3_PORT}.log", "wb")
    proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(S3_PORT)], stdout=log, stderr=subprocess.STDOUT)
    url = os.environ["AWS_ENDPOINT_URL"]
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", S3_PORT), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError(f"moto_server did not start on port {S3_PORT}")
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket on the session's S3 server; yields ``s3://<bucket>``."""
    import boto3

    name = f"t-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    yield f"s3://{name}"


@pytest.fixture(scope="session")
def ray_head():
    """Start a private local Ray head (GCS + dashboard/job server) for the session; yield its addresses."""
    from tests.ray_head import PrivateRayHead

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
