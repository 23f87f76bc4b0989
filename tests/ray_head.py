"""A private local Ray head for test sessions and benchmarks: started, waited for, stopped, alone.

``ray start --head --block`` runs in its own session with every default port moved to a free one, so
another Ray cluster on the machine (a user's, another benchmark's) cannot take its job agent's port, and
stopping it stops exactly this cluster (never ``ray stop``, which stops every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

_PORT_FLAGS = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
               "metrics-export-port", "ray-client-server-port")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRayHead:
    """``with PrivateRayHead(tmp) as head:`` ``head.gcs`` (for ``ray.init``), ``head.dashboard`` (job server)."""

    def __init__(self, tmp: Path, num_cpus: int = 2, env: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        gcs_port, dash_port = free_port(), free_port()
        self.gcs, self.dashboard = f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dash_port}"
        env = dict(os.environ if env is None else env)
        env.pop("RAY_ADDRESS", None)
        # On SIGTERM `ray start --block` first asks the GCS to drain the node and waits up to 30 s for it
        # (meant for Serve replicas on Kubernetes). Nothing here needs draining: shut down at once.
        env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
        ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
        cmd = [ray_bin, "start", "--head", f"--port={gcs_port}", f"--num-cpus={num_cpus}",
               "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}", f"--temp-dir={self.tmp}",
               "--include-dashboard=true", "--disable-usage-stats", "--block",
               *(f"--{flag}={free_port()}" for flag in _PORT_FLAGS), *extra_args]
        self.log = open(self.tmp / "ray-start.log", "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def __enter__(self) -> PrivateRayHead:
        try:
            self.wait_ready()
        except BaseException:  # a head that never got ready is stopped too, not left to the machine
            self.stop(grace=2)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_ready(self, timeout: float = 180) -> None:
        """Until the job server answers and its job agent has run a no-op job (right after start the
        dashboard answers before the agent has registered: "No available agent to submit job")."""
        from ray.job_submission import JobStatus, JobSubmissionClient

        deadline = time.time() + timeout
        while not self._answers():
            if time.time() > deadline or self.proc.poll() is not None:
                tail = (self.tmp / "ray-start.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"Ray head did not answer at {self.dashboard}:\n{tail}")
            time.sleep(0.5)
        client = JobSubmissionClient(self.dashboard)
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
                raise RuntimeError("the Ray head's warm-up job did not finish")
            time.sleep(0.5)

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.dashboard + "/api/version", timeout=2)
            return True
        except urllib.error.HTTPError:
            return True  # it answers (an auth error still means the server is up)
        except OSError:
            return False

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to ``ray start`` only, whose handler stops its own processes in order (raylet, GCS,
        dashboard...) in about 2 s; after ``grace`` seconds the process group is SIGKILLed, then every process
        still holding a file in this head's temp dir (workers and job drivers that left the group)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        prefix = str(self.tmp)
        for pid_dir in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError, ValueError):
                if int(pid_dir.name) != os.getpid() and any(
                        os.readlink(fd).startswith(prefix) for fd in (pid_dir / "fd").iterdir()):
                    os.kill(int(pid_dir.name), signal.SIGKILL)
        self.log.close()
