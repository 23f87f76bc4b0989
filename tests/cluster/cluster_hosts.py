"""Two Ray hosts on one machine: network namespaces joined by a veth pair, each running the containers'
``docker/entrypoint.sh head|worker``; or, where ``ip netns`` is refused, two Ray nodes on 127.0.0.1.

Everything runs in subprocesses (``ip netns exec NS ...``), never ``ray.init`` in the calling process, so a
Ray cluster the caller is connected to is left alone. Processes are stopped by the namespace they live in
(``ip netns pids``) or by the process group this module started, never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
BIN = Path(sys.executable).parent
RAY_PORT = 6380
DASHBOARD_PORT = 8265
SAMPLE = REPO / "examples" / "data" / "sample.warc.gz"
PARTS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def _sigterm_to_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def netns_refusal() -> str | None:
    """Why two network namespaces cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "no `ip` command"
    name = f"curprobe{os.getpid()}"
    made = _ip("netns", "add", name)
    if made.returncode != 0:
        return f"`ip netns add` refused: {made.stderr.strip()}"
    _ip("netns", "del", name)
    return None


@dataclass
class Host:
    """One Ray host: a network namespace (``ns``) with address ``ip``, or the root namespace (``ns=None``)."""

    name: str
    ns: str | None
    ip: str
    temp_dir: Path
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns] if self.ns else []

    def env(self, **more: str) -> dict[str, str]:
        env = dict(os.environ)
        for var in ("RAY_ADDRESS", "CURATOR_RAY_ADDRESS"):
            env.pop(var, None)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env["RAY_AUTH_MODE"] = "disabled"  # a private network of this machine, as the session's cluster
        env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
        env["CURATOR_ROLE_FILE"] = str(self.temp_dir / "role")
        env.update(self.extra_env)
        env.update(more)
        return env

    def run(self, cmd: list[str], timeout: float = 120, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        """Run ``cmd`` on this host; returns the finished process (stdout/stderr as text)."""
        proc = subprocess.run([*self.prefix(), *cmd], env=self.env(**env), capture_output=True, text=True,
                              timeout=timeout, cwd=REPO)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(cmd)} -> rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def spawn(self, role: str, **env: str) -> subprocess.Popen:
        """``docker/entrypoint.sh ROLE`` on this host, in the background, in its own process group (output in
        ``<temp dir>/<role>.log``)."""
        with open(self.temp_dir / f"{role}.log", "wb") as log:
            return subprocess.Popen([*self.prefix(), str(ENTRYPOINT), role], env=self.env(**env), stdout=log,
                                    stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)

    def start(self, role: str, **env: str) -> None:
        """Start this host's Ray node (role ``head`` or ``worker``); ``stop()`` ends it."""
        self.log_path = self.temp_dir / f"{role}.log"
        self.proc = self.spawn(role, **env)

    def log_tail(self, n: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path and self.log_path.exists() else ""

    def pids(self) -> list[int]:
        """Every process of this host: those in its namespace, or (root namespace) of its process group and
        those holding a file under its temp dir (Ray workers leave the group)."""
        if self.ns:
            out = _ip("netns", "pids", self.ns).stdout.split()
            return [int(p) for p in out if p.isdigit() and int(p) != os.getpid()]
        pids = set()
        if self.proc is not None:
            for pid_dir in Path("/proc").glob("[0-9]*"):
                with contextlib.suppress(OSError, ValueError):
                    pid = int(pid_dir.name)
                    if pid != os.getpid() and (os.getpgid(pid) == self.proc.pid or any(
                            os.readlink(fd).startswith(str(self.temp_dir)) for fd in (pid_dir / "fd").iterdir())):
                        pids.add(pid)
        return sorted(pids)

    def pids_named(self, comm: str) -> list[int]:
        out = []
        for pid in self.pids():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
                    out.append(pid)
        return out

    def pids_titled(self, title: str) -> list[int]:
        """Processes of this host whose command line starts with ``title`` (Ray workers retitle themselves
        ``ray::<task name>`` while they run a task)."""
        out = []
        for pid in self.pids():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(title.encode()):
                    out.append(pid)
        return out

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to ``ray start`` (it stops its node in order), then SIGKILL to whatever is left."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        for _ in range(3):
            left = self.pids()
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)


STALE_NS = re.compile(r"^cur(\d+)n\d+[ab]$")


def remove_stale_namespaces() -> list[str]:
    """Delete the namespaces (and stop their processes) of earlier TwoHosts whose creating process is gone
    (a test session killed before its finalizers ran); returns their names."""
    removed = []
    for line in _ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = STALE_NS.match(name)
        if not m or Path(f"/proc/{m.group(1)}").exists():
            continue
        for pid in _ip("netns", "pids", name).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.5)
        _ip("netns", "del", name)
        removed.append(name)
    return removed


class TwoHosts:
    """``with TwoHosts(cpus=1) as c:`` a Ray head on ``c.a`` and a worker node on ``c.b`` (custom resources
    ``hostA``/``hostB`` of 1 each), ready; everything they started is stopped and the namespaces deleted on exit.
    ``nodes=1`` starts the head only (host B stays empty). SIGTERM while it is open becomes KeyboardInterrupt,
    so a caller's finalizers still stop everything (pytest under ``timeout``)."""

    _made = 0

    def __init__(self, cpus: int = 1, use_netns: bool = True, env: dict[str, str] | None = None,
                 nodes: int = 2) -> None:
        assert nodes in (1, 2)
        self.cpus, self.n_nodes = cpus, nodes
        self.node_extra_env = dict(env or {})
        self._old_sigterm = None
        self.use_netns = use_netns
        self.tmp = Path(tempfile.mkdtemp(prefix="cl-", dir="/tmp"))  # short: Ray's socket paths are limited
        TwoHosts._made += 1
        tag = f"{os.getpid()}n{TwoHosts._made}"  # the creating pid: stale namespaces are recognised by it
        self.tag = tag
        if use_netns:
            net = f"10.{random.randrange(200, 250)}.{random.randrange(1, 250)}"
            self.a = Host("A", f"cur{tag}a", f"{net}.1", self._dir("a"))
            self.b = Host("B", f"cur{tag}b", f"{net}.2", self._dir("b"))
            self.gcs_port, self.dash_port = RAY_PORT, DASHBOARD_PORT
            self.fallback_reason = None
        else:
            self.a = Host("A", None, "127.0.0.1", self._dir("a"))
            self.b = Host("B", None, "127.0.0.1", self._dir("b"))
            self.gcs_port, self.dash_port = free_port(), free_port()
            self.fallback_reason = "ip netns refused: two Ray nodes on this machine (head on 127.0.0.1), not two hosts"
        self.gcs = f"{self.a.ip}:{self.gcs_port}"
        self.dashboard = f"http://{self.a.ip}:{self.dash_port}"

    def _dir(self, name: str) -> Path:
        d = self.tmp / name
        d.mkdir()
        return d

    # --- network
    def _make_network(self) -> None:
        a, b = self.a, self.b
        va, vb = f"cv{self.tag}a", f"cv{self.tag}b"  # at most 15 characters: "cv" + 7-digit pid + "n" + k
        steps = [("netns", "add", a.ns), ("netns", "add", b.ns),
                 ("link", "add", va, "type", "veth", "peer", "name", vb),
                 ("link", "set", va, "netns", a.ns), ("link", "set", vb, "netns", b.ns),
                 ("-n", a.ns, "addr", "add", f"{a.ip}/30", "dev", va),
                 ("-n", b.ns, "addr", "add", f"{b.ip}/30", "dev", vb),
                 ("-n", a.ns, "link", "set", "lo", "up"), ("-n", b.ns, "link", "set", "lo", "up"),
                 ("-n", a.ns, "link", "set", va, "up"), ("-n", b.ns, "link", "set", vb, "up")]
        for step in steps:
            res = _ip(*step)
            if res.returncode != 0:
                raise RuntimeError(f"ip {' '.join(step)}: {res.stderr.strip()}")

    def _node_env(self, host: Host, resource: str) -> dict[str, str]:
        env = {"RAY_PORT": str(self.gcs_port), "RAY_NUM_CPUS": str(self.cpus), "RAY_TEMP_DIR": str(host.temp_dir),
               "RAY_RESOURCES": json.dumps({resource: 1}), "RAY_OBJECT_STORE_MEMORY": str(300 * 2**20),
               **self.node_extra_env}
        if host.ns is None:  # two nodes in one port space: every port of each node moved to a free one
            env["RAY_NODE_IP"] = "127.0.0.1"
            flags = ["dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
                     "metrics-export-port", "node-manager-port", "object-manager-port"]
            if resource == "hostA":
                flags.append("ray-client-server-port")
            env["RAY_START_ARGS"] = " ".join(f"--{f}={free_port()}" for f in flags)
        return env

    # --- lifecycle
    def __enter__(self) -> TwoHosts:
        self._old_sigterm = None
        if threading.current_thread() is threading.main_thread():
            self._old_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
        try:
            if self.use_netns:
                remove_stale_namespaces()
                self._make_network()
            self.a.start("head", RAY_DASHBOARD_HOST=self.a.ip, RAY_DASHBOARD_PORT=str(self.dash_port),
                         **self._node_env(self.a, "hostA"))
            self.wait_jobs_ready()
            if self.n_nodes == 2:
                self.b.start("worker", RAY_HEAD=self.a.ip, **self._node_env(self.b, "hostB"))
            self.wait_nodes(self.n_nodes)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for host in (self.b, self.a):
            with contextlib.suppress(Exception):
                host.stop()
        if self.use_netns:
            for host in (self.b, self.a):
                _ip("netns", "del", host.ns)
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    def ray(self, *args: str, timeout: float = 120) -> str:
        """A ``ray`` CLI command on host A against this cluster; returns stdout."""
        return self.a.run(["ray", *args], timeout=timeout).stdout

    def wait_jobs_ready(self, timeout: float = 180) -> None:
        """Until the head's job server runs a no-op job (its job agent registers after the dashboard answers)."""
        deadline = time.time() + timeout
        while True:
            if self.a.proc.poll() is not None:
                raise RuntimeError(f"the Ray head exited (rc {self.a.proc.returncode}):\n{self.a.log_tail()}")
            res = self.a.run(["ray", "job", "submit", "--address", self.dashboard, "--", "true"], timeout=60,
                             check=False)
            if res.returncode == 0 and "succeeded" in res.stdout:
                return
            if time.time() > deadline:
                raise RuntimeError(f"the Ray head's job server did not run a job:\n{res.stdout}\n{res.stderr}\n"
                                   f"{self.a.log_tail()}")
            time.sleep(2)

    def nodes(self) -> list[dict]:
        return json.loads(self.ray("list", "nodes", "--address", self.gcs, "--format", "json", "--limit", "100"))

    def alive_nodes(self) -> list[dict]:
        return [n for n in self.nodes() if n["state"] == "ALIVE"]

    def wait_nodes(self, n: int, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while len(self.alive_nodes()) < n:
            if self.b.proc is not None and self.b.proc.poll() is not None:
                raise RuntimeError(f"the Ray worker exited (rc {self.b.proc.returncode}):\n{self.b.log_tail()}")
            if time.time() > deadline:
                raise RuntimeError(f"only {len(self.alive_nodes())} of {n} Ray nodes alive:\n{self.b.log_tail()}")
            time.sleep(1)

    def node_of(self, resource: str) -> dict:
        """The alive node advertising custom resource ``resource``."""
        nodes = [n for n in self.alive_nodes() if resource in (n.get("resources_total") or {})]
        assert len(nodes) == 1, f"one node with {resource} expected: {nodes}"
        return nodes[0]

    # --- jobs
    def submit(self, submission_id: str, entrypoint: list[str]) -> None:
        self.ray("job", "submit", "--address", self.dashboard, "--submission-id", submission_id, "--no-wait",
                 "--", *entrypoint)

    def job_status(self, submission_id: str) -> dict:
        out = self.ray("list", "jobs", "--address", self.gcs, "--format", "json", "--detail", "--limit", "100")
        jobs = [j for j in json.loads(out) if j.get("submission_id") == submission_id]
        assert len(jobs) == 1, jobs
        return jobs[0]

    def wait_job(self, submission_id: str, timeout: float = 600) -> dict:
        deadline = time.time() + timeout
        while True:
            job = self.job_status(submission_id)
            if job["status"] in ("SUCCEEDED", "FAILED", "STOPPED"):
                return job
            if time.time() > deadline:
                raise TimeoutError(f"job {submission_id} still {job['status']} after {timeout:.0f}s")
            time.sleep(2)

    def job_logs(self, submission_id: str) -> str:
        return self.a.run(["ray", "job", "logs", "--address", self.dashboard, submission_id], check=False).stdout

    def tasks(self, job_id: str) -> list[dict]:
        """Every task of Ray job ``job_id`` the state API knows (with ``node_id`` and ``state``)."""
        out = self.ray("list", "tasks", "--address", self.gcs, "--format", "json", "--detail", "--limit", "10000",
                       "--filter", f"job_id={job_id}", timeout=180)
        return json.loads(out)


def split_warc(src: Path, folder: Path, parts: int) -> list[Path]:
    """Cut a record-per-gzip-member WARC into ``parts`` files at request records (raw bytes, no re-encoding)."""
    from warcio.archiveiterator import ArchiveIterator

    with open(src, "rb") as f:
        it = ArchiveIterator(f)
        starts = [it.get_record_offset() for rec in it if rec.rec_type == "request"]
    data = src.read_bytes()
    step = len(starts) // parts
    cuts = [0] + [starts[i * step] for i in range(1, parts)] + [len(data)]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(parts):
        path = folder / f"part-{i}.warc.gz"
        path.write_bytes(data[cuts[i]:cuts[i + 1]])
        out.append(path)
    return out


def curator_run_cmd(inputs_glob: str, out: Path, python: str = sys.executable) -> list[str]:
    """``curator run pipelines/commoncrawl.yaml`` on ``inputs_glob``, writing ``out``."""
    inputs = json.dumps([{"path": inputs_glob, "format": "warc", "source": "commoncrawl"}])
    return [python, "-m", "curator", "run", str(REPO / "pipelines" / "commoncrawl.yaml"),
            "--set", f"inputs={inputs}", "--set", f"output.path={out}"]
