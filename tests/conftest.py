"""Test fixtures shared by the whole suite.

One local Ray cluster per test session: ``ray start --head`` in a temporary folder (so the job
submission path, ``ray job submit``, is real too), stopped at the end. Tests that need Ray take the
``ray_cluster`` fixture (or ``ray_address`` for the dashboard URL).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Ray >= 2.5x turns on token auth for a new local cluster by default and keeps the token in
# ~/.ray/auth_token, which then also applies to every later `ray start` on the machine. The test clusters
# are private to this machine's loopback: keep them unauthenticated so every client in the suite (the
# driver, `ray job submit`, the job service's JobSubmissionClient) behaves the same on a fresh machine.
os.environ["RAY_AUTH_MODE"] = "disabled"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_processes_using(folder: Path) -> None:
    """Kill this cluster's stragglers (agents that left the process group) by their open log files."""
    prefix = str(folder)
    for pid_dir in Path("/proc").glob("[0-9]*"):
        if int(pid_dir.name) == os.getpid():
            continue
        try:
            fds = list((pid_dir / "fd").iterdir())
            if any(os.readlink(fd).startswith(prefix) for fd in fds):
                os.kill(int(pid_dir.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _stop_head(proc: subprocess.Popen, tmp: Path, grace: float = 10.0) -> None:
    """Stop exactly the cluster of ``proc`` (a ``ray start --head --block``), which is what ``ray stop``
    would do for it alone: SIGTERM to ``ray start`` only, whose handler stops its own processes in order
    (raylet first, then GCS, dashboard...) in about 2 s; a signal to the whole group would kill the GCS
    under it and make it wait for that. After ``grace`` seconds the process group is SIGKILLed, and so is
    any process still holding a file in the cluster's temp dir (workers and job drivers that left the
    group)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    _kill_processes_using(tmp)


def _wait_for_job_agent(dashboard: str, deadline: float) -> None:
    """Submit a no-op job until the head's job agent accepts it: right after `ray start` the dashboard
    answers before the agent has registered ("No available agent to submit job")."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(dashboard)
    while True:
        try:
            job = client.submit_job(entrypoint="true")
            break
        except RuntimeError:
            if time.time() > deadline:
                raise
            time.sleep(1)
    while client.get_job_status(job) not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        if time.time() > deadline:
            raise RuntimeError("the warm-up Ray job did not finish")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def ray_head():
    """Start a local Ray head (GCS + dashboard/job server) for the session; yield its addresses."""
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    tmp = Path(tempfile.mkdtemp(prefix="curator-ray-"))
    gcs_port, dash_port = _free_port(), _free_port()
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    # On SIGTERM `ray start --block` first asks the GCS to drain the node and waits up to 30 s for it
    # (meant for Serve replicas on Kubernetes). Nothing here needs draining: shut down at once.
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
    cmd = [
        ray_bin, "start", "--head", f"--port={gcs_port}", "--num-cpus=2",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}",
        f"--temp-dir={tmp}", "--include-dashboard=true", "--disable-usage-stats",
        # every fixed default port on its own free one, so another Ray cluster on the machine (a user's,
        # a benchmark's) cannot take the job agent's port and leave "No available agent to submit job"
        f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
        f"--runtime-env-agent-port={_free_port()}", f"--metrics-export-port={_free_port()}",
        f"--ray-client-server-port={_free_port()}",
    ]
    # --block keeps `ray start` in the foreground as the parent of this cluster's processes, so the
    # teardown can stop exactly this cluster (not others on the machine): see _stop_head.
    log = open(tmp / "ray-start.log", "wb")
    proc = subprocess.Popen(cmd + ["--block"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    addresses = {
        "gcs": f"127.0.0.1:{gcs_port}",
        "dashboard": f"http://127.0.0.1:{dash_port}",
        "temp_dir": str(tmp),
    }
    # wait for the job server to answer
    import urllib.error
    import urllib.request

    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                urllib.request.urlopen(addresses["dashboard"] + "/api/version", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers (an auth error still means the server is up)
            except Exception:
                time.sleep(0.5)
        else:
            tail = (tmp / "ray-start.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"Ray head did not answer at {addresses['dashboard']}:\n{tail}")
        _wait_for_job_agent(addresses["dashboard"], deadline=time.time() + 180)
    except BaseException:  # a head that never got ready is stopped too, not left to the machine
        _stop_head(proc, tmp, grace=2)
        log.close()
        raise
    try:
        yield addresses
    finally:
        try:
            import ray

            ray.shutdown()
        except Exception:  # noqa: BLE001
            pass
        _stop_head(proc, tmp)
        log.close()
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
