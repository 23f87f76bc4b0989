"""``curator serve``: run the job service with uvicorn.

With no Ray job server configured (``CURATOR_RAY_ADDRESS``, or ``RAY_ADDRESS`` as an http URL), it reuses a
local head whose job server answers on the dashboard port (8265), or starts one with ``ray start --head``.
That head gets free ports for the GCS and Ray's other services (6379, Ray's default GCS port, is often
taken, e.g. by Redis), and a free dashboard port if 8265 is taken by something that is not Ray. It is left
running on exit, so jobs survive a restart of the service (stop it with ``ray stop``).

The head it starts has token authentication on (a head without it runs any code anyone on the network
sends to its GCS port): with the token the service finds (api/ray_jobs.py), else with a new one saved to
``~/.ray/auth_token``, as ``ray get-auth-token --generate`` does, where Ray's own clients on this machine
look for it. ``RAY_AUTH_MODE=disabled`` in the environment starts it without. (``ray start --head`` alone
turns auth on only when a token already exists; ``ray.init()`` makes one.)
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

log = logging.getLogger("api.serve")

# Ray's services besides the GCS and the dashboard, each moved to a free port when this starts a head
PORT_FLAGS = ("ray-client-server-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
              "runtime-env-agent-port", "metrics-export-port", "node-manager-port", "object-manager-port")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def ray_answers(address: str) -> bool:
    """A Ray job server answers at ``address`` (with or without token auth: 401/403 are Ray's answers too)."""
    try:
        r = httpx.get(address + "/api/version", timeout=2)
    except httpx.HTTPError:
        return False
    if r.status_code == 200:
        return "ray_version" in r.text
    return r.status_code in (401, 403) and "authentication token" in r.text


def head_token(configured: str | None) -> str | None:
    """The token the head started here uses: the configured or found one, else a new one saved where Ray
    looks (None when RAY_AUTH_MODE=disabled)."""
    from api.ray_jobs import DEFAULT_TOKEN_PATH

    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return None
    if configured:
        return configured
    path = DEFAULT_TOKEN_PATH.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    log.info("made a Ray auth token for the new head: %s", path)
    return token


def start_local_head(dashboard_port: int = 8265, num_cpus: int | None = None, timeout: float = 90,
                     token: str | None = None) -> str:
    """Reuse or start a local Ray head (with token auth when ``token`` is given); return its dashboard (job
    server) address."""
    address = f"http://127.0.0.1:{dashboard_port}"
    if ray_answers(address):
        log.info("using the Ray head already answering at %s", address)
        return address
    if port_in_use(dashboard_port):
        dashboard_port = free_port()
        log.warning("port %s is taken by something that is not Ray; the head's dashboard uses %d",
                    address.rsplit(":", 1)[1], dashboard_port)
        address = f"http://127.0.0.1:{dashboard_port}"
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    cmd = [
        ray_bin,
        "start",
        "--head",
        f"--port={free_port()}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard_port}",
        "--include-dashboard=true",
        "--disable-usage-stats",
        *(f"--{flag}={free_port()}" for flag in PORT_FLAGS),
    ]
    if num_cpus:
        cmd.append(f"--num-cpus={num_cpus}")
    log.info("starting a local Ray head: %s", " ".join(cmd))
    env = dict(os.environ)
    if token:
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          start_new_session=True)  # its own session: a Ctrl-C or kill of the service spares it
    if proc.returncode != 0:
        raise SystemExit(f"`ray start --head` failed:\n{proc.stderr or proc.stdout}")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ray_answers(address):
            return address
        time.sleep(0.5)
    raise SystemExit(f"the local Ray head did not answer at {address} within {timeout:.0f}s")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="curator serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Other settings come from CURATOR_* environment variables (api/SETTINGS.md).",
    )
    p.add_argument("--host", help="bind address (CURATOR_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (CURATOR_PORT, default 8000)")
    p.add_argument("--ray-address", help="Ray dashboard URL (CURATOR_RAY_ADDRESS)")
    p.add_argument("--dashboard-port", type=int, default=8265, help="port of a local head started here")
    p.add_argument("--num-cpus", type=int, help="CPUs of a local head started here")
    p.add_argument("--log-level", default="info")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn
    from pydantic import SecretStr

    from api.app import create_app
    from api.settings import Settings

    settings = Settings()
    updates: dict = {}
    if args.host:
        updates["host"] = args.host
    if args.port is not None:
        updates["port"] = args.port
    if args.ray_address:
        updates["ray_address"] = args.ray_address
    settings = settings.model_copy(update=updates)
    if not settings.dashboard_address():
        local = f"http://127.0.0.1:{args.dashboard_port}"
        token = settings.ray_token() if ray_answers(local) else head_token(settings.ray_token())
        address = start_local_head(args.dashboard_port, args.num_cpus, token=token)
        updates = {"ray_address": address}
        if token:
            updates["ray_auth_token"] = SecretStr(token)
        if "job_entrypoint" not in settings.model_fields_set:
            # the head runs on this machine: jobs use this very interpreter
            updates["job_entrypoint"] = f"{sys.executable} -m curator"
        settings = settings.model_copy(update=updates)
    app = create_app(settings)
    try:
        version = app.state.service.ray.ping()
        log.info("Ray job server %s answers (ray %s)", settings.ray_address, version)
    except Exception as exc:  # noqa: BLE001 - the service starts anyway; /readyz says why it is not ready
        print(f"curator serve: warning: {exc}", flush=True)
    token = getattr(app.state, "generated_token", None)
    if token:
        print(f"curator serve: no CURATOR_TOKENS set; use this token for this run: {token}", flush=True)
    print(
        f"curator serve: http://{settings.host}:{settings.port}/ (Ray jobs at {settings.ray_address})",
        flush=True,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
