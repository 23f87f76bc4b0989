"""Helpers of the job-service tests: a real uvicorn server in a subprocess, configured by CURATOR_* env
vars, over SQLite or the real PostgreSQL on 127.0.0.1:5432 (one fresh schema per server)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("CURATOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TOKEN = "alice-token-" + "x" * 20
OTHER_TOKEN = "bob-token-" + "y" * 20
ADMIN_TOKEN = "root-token-" + "z" * 20
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_available() -> bool:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


def require_pg() -> None:
    if not pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL} (CI must start it)")
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}")


def drop_pg_schema(schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def db_env(backend: str, state_dir: Path) -> dict[str, str]:
    if backend == "sqlite":
        return {"CURATOR_DATABASE_URL": f"sqlite:///{state_dir / 'jobs.db'}"}
    return {"CURATOR_DATABASE_URL": PG_URL, "CURATOR_DB_SCHEMA": f"t_{uuid.uuid4().hex[:12]}"}


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": f"d{i}", "text": t}) + "\n")
    return path


class Server:
    """``uvicorn api.app:app`` in a subprocess; ``stop()`` is SIGTERM, ``kill()`` SIGKILL."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self.env = env
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CURATOR_") and k != "RAY_ADDRESS"}
        env.update(self.env)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def base_env(tmp: Path, backend: str = "sqlite", **extra: str) -> dict[str, str]:
    state = tmp / "state"
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    env = {
        "CURATOR_STATE_DIR": str(state),
        "CURATOR_DATA_ROOTS": str(data),
        "CURATOR_TOKENS": f"alice:{TOKEN},bob:sha256:{hashlib.sha256(OTHER_TOKEN.encode()).hexdigest()},"
        f"root+admin:{ADMIN_TOKEN}",
        "CURATOR_POLL_INTERVAL_S": "0.5",
        "CURATOR_PIPELINES_DIR": str(tmp / "pipelines"),
        "CURATOR_RAY_ADDRESS": "http://127.0.0.1:9",  # nothing listens: submissions answer 503
        "CURATOR_MAX_BODY_BYTES": "65536",
        **db_env(backend, state),
    }
    env.update(extra)
    return env


GATED_ENTRYPOINT = """#!/bin/sh
# Test entrypoint: a job whose spec name starts with "gated-" waits until GATES/<name> exists, then
# every job runs the real CLI. This makes "a long job" deterministic without large data.
name=$("{python}" -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$2")
case "$name" in
  gated-*) while [ ! -e "{gates}/$name" ]; do sleep 0.2; done ;;
esac
exec "{python}" -m curator "$@"
"""


def write_gated_entrypoint(tmp: Path) -> tuple[Path, Path]:
    """Write the entrypoint script; returns (script, gates folder)."""
    gates = tmp / "gates"
    gates.mkdir(parents=True, exist_ok=True)
    script = tmp / "gated-curator.sh"
    script.write_text(GATED_ENTRYPOINT.format(python=sys.executable, gates=gates))
    script.chmod(0o755)
    return script, gates


def ray_env(tmp: Path, dashboard: str, backend: str = "sqlite", **extra: str) -> dict[str, str]:
    script, _ = write_gated_entrypoint(tmp)
    return base_env(
        tmp,
        backend,
        CURATOR_RAY_ADDRESS=dashboard,
        CURATOR_JOB_ENTRYPOINT=str(script),
        CURATOR_JOB_ENV=json.dumps({"PYTHONPATH": str(REPO)}),
        **extra,
    )


def wait_for(fn, timeout: float = 180, interval: float = 0.3, what: str = "condition"):
    """Poll ``fn`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def job_status(client: httpx.Client, job_id: str, wanted: set[str]) -> dict | None:
    body = client.get(f"/v1/jobs/{job_id}").json()
    return body if body["status"] in wanted else None


def tiny_spec(data: Path, name: str, out: str, min_chars: int = 100) -> dict:
    return {
        "name": name,
        "inputs": [{"path": str(data / "in.jsonl")}],
        "stages": [{"stage": "min_length", "min_chars": min_chars}],
        "output": {"path": out},
    }


# five documents of 0, 50, ..., 200 characters: min_chars=100 keeps three and drops two as too_short
TINY_TEXTS = ["x" * (i * 50) for i in range(5)]


def kill_processes_using(prefix: str) -> None:
    """SIGKILL every process (but this one) holding a file under ``prefix``: the Ray head a test started
    there, its workers and job drivers, and nothing else on the machine (never ``ray stop``)."""
    import contextlib

    for pid_dir in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError):
            if int(pid_dir.name) != os.getpid() and any(
                os.readlink(fd).startswith(prefix) for fd in (pid_dir / "fd").iterdir()
            ):
                os.kill(int(pid_dir.name), signal.SIGKILL)


def wait_ray_ready(dashboard: str, token: str | None, timeout: float = 120) -> None:
    """Until the job server answers and its job agent has run a no-op job, sending ``token`` if given."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.time() + timeout
    wait_for(lambda: _http_status(dashboard + "/api/version", headers) == 200, timeout, what="Ray job server")
    client = JobSubmissionClient(dashboard, headers=headers)
    while True:
        try:
            job = client.submit_job(entrypoint="true")
            break
        except RuntimeError:
            if time.time() > deadline:
                raise
            time.sleep(1)
    wait_for(lambda: client.get_job_status(job) in {JobStatus.SUCCEEDED, JobStatus.FAILED},
             max(1.0, deadline - time.time()), what="warm-up job")


def _http_status(url: str, headers: dict[str, str]) -> int | None:
    try:
        return httpx.get(url, headers=headers, timeout=2).status_code
    except httpx.HTTPError:
        return None
