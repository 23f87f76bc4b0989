"""The commoncrawl recipe on a real two-host Ray cluster (two network namespaces joined by a veth pair), each
host started by the containers' ``docker/entrypoint.sh``: sent with ``ray job submit``, its tasks ran on both
hosts and the output equals the single-node run's byte for byte; sent through the job service (``POST
/v1/jobs``, the service started by the entrypoint's ``api`` role) with the worker host's raylet killed
mid-job, it never ends ``succeeded`` with rows missing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from cluster_hosts import ENTRYPOINT, PARTS, REPO, TwoHosts, curator_run_cmd, free_port

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]
DONE = {"succeeded", "failed", "cancelled"}


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _files(manifest: dict) -> list[tuple[str, int, int, str]]:
    """The committed files as (subset, rows, bytes, sha256), sorted."""
    return sorted((f["subset"], f["rows"], f["bytes"], f["sha256"]) for f in manifest["files"])


def _rows(out: Path, manifest: dict) -> dict[str, list[tuple[str, str]]]:
    """subset -> sorted (id, text) of every row of the files the manifest lists."""
    rows: dict[str, list[tuple[str, str]]] = {}
    for f in manifest["files"]:
        t = pq.read_table(out / f["path"], columns=["id", "text"])
        rows.setdefault(f["subset"], []).extend(zip(t.column("id").to_pylist(), t.column("text").to_pylist()))
    return {k: sorted(v) for k, v in rows.items()}


def _verify(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curator", "verify", str(out), "--json"], capture_output=True,
                          text=True, cwd=REPO, timeout=300)


def _job_tasks(cluster: TwoHosts, submission_id: str) -> list[dict]:
    return cluster.tasks(cluster.job_status(submission_id)["job_id"])


def test_entrypoint_roles_start_one_node_per_host(two_hosts: TwoHosts):
    nodes = two_hosts.alive_nodes()
    assert len(nodes) == 2
    a, b = two_hosts.node_of("hostA"), two_hosts.node_of("hostB")
    assert a["is_head_node"] and not b["is_head_node"]
    assert a["resources_total"]["CPU"] == 1 and b["resources_total"]["CPU"] == 1
    # the containers' health check, per role
    assert two_hosts.a.run([str(ENTRYPOINT), "health"], check=False).returncode == 0
    assert two_hosts.b.run([str(ENTRYPOINT), "health"], check=False).returncode == 0
    if two_hosts.use_netns:
        # the node address came from `hostname -I` inside each namespace (RAY_NODE_IP unset)
        assert (a["node_ip"], b["node_ip"]) == (two_hosts.a.ip, two_hosts.b.ip)
        assert two_hosts.a.ip != two_hosts.b.ip
        # the addresses exist only between the two namespaces, not on this machine's own network
        assert two_hosts.a.ip not in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    else:
        pytest.skip(two_hosts.fallback_reason)


def test_commoncrawl_on_two_hosts_equals_the_single_node_run(two_hosts: TwoHosts, cluster_data: Path,
                                                             reference: Path):
    out = cluster_data / "two-hosts"
    sid = f"cc-{uuid.uuid4().hex[:8]}"
    two_hosts.submit(sid, curator_run_cmd(str(cluster_data / "in" / "*.warc.gz"), out))
    job = two_hosts.wait_job(sid)
    assert job["status"] == "SUCCEEDED", two_hosts.job_logs(sid)[-4000:]

    # Ray's state API: the unit tasks (one per input file) ran on both hosts, and so did other work
    node_a, node_b = two_hosts.node_of("hostA")["node_id"], two_hosts.node_of("hostB")["node_id"]
    tasks = [t for t in _job_tasks(two_hosts, sid) if t["state"] == "FINISHED"]
    units = [t for t in tasks if t["name"] == "execute_unit"]
    assert len(units) >= PARTS + 1  # phase 0: one per input file; at least one final-phase task
    assert {t["node_id"] for t in units} == {node_a, node_b}
    # Ray Data's tasks of the global stages too (tasks without a node are the driver's own bookkeeping)
    others = [t for t in tasks if t["name"] != "execute_unit" and t["node_id"]]
    assert others and {t["node_id"] for t in others} <= {node_a, node_b}

    ref, got = _manifest(reference), _manifest(out)
    assert got["counts"] == ref["counts"]
    assert _files(got) == _files(ref)  # same shards: rows, bytes and sha256
    assert sorted(f["path"] for f in got["files"]) == sorted(f["path"] for f in ref["files"])
    rows = _rows(out, got)
    assert rows == _rows(reference, ref)
    assert len(rows["train"]) == ref["counts"]["kept"] > 0
    report = _verify(out)
    assert report.returncode == 0, report.stdout + report.stderr
    assert json.loads(report.stdout)["ok"] is True


TOKEN = "alice-cluster-" + "z" * 24
HTTP_CLIENT = """
import json, sys, httpx
method, url, token, body = sys.argv[1:5]
r = httpx.request(method, url, headers={"Authorization": "Bearer " + token},
                  json=json.loads(body) if body else None, timeout=30)
is_json = "json" in r.headers.get("content-type", "")
print(json.dumps({"status": r.status_code, "body": r.json() if is_json else r.text}))
"""


class Service:
    """The job service on host A, started by ``docker/entrypoint.sh api``; requests are sent from host A too."""

    def __init__(self, cluster: TwoHosts, data: Path) -> None:
        self.cluster, self.host = cluster, cluster.a
        port = 8000 if cluster.use_netns else free_port()
        self.url = f"http://{self.host.ip}:{port}"
        state = self.host.temp_dir / "api-state"
        self.proc = self.host.spawn(
            "api", CURATOR_HOST=self.host.ip, CURATOR_PORT=str(port), CURATOR_RAY_ADDRESS=cluster.dashboard,
            CURATOR_STATE_DIR=str(state), CURATOR_DATABASE_URL=f"sqlite:///{state / 'jobs.db'}",
            CURATOR_DATA_ROOTS=str(data), CURATOR_TOKENS=f"alice:{TOKEN}",
            CURATOR_PIPELINES_DIR=str(REPO / "pipelines"), CURATOR_JOB_ENTRYPOINT=f"{sys.executable} -m curator")
        deadline = time.time() + 120
        while self.request("GET", "/healthz", check=False)["status"] != 200:
            assert self.proc.poll() is None and time.time() < deadline, \
                (self.host.temp_dir / "api.log").read_text()[-3000:]
            time.sleep(1)

    def request(self, method: str, path: str, body: dict | None = None, check: bool = True) -> dict:
        res = self.host.run([sys.executable, "-c", HTTP_CLIENT, method, self.url + path, TOKEN,
                             json.dumps(body) if body is not None else ""], check=False, timeout=60)
        if res.returncode != 0:
            if check:
                raise RuntimeError(res.stderr)
            return {"status": None, "body": res.stderr}
        return json.loads(res.stdout)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="module")
def service(two_hosts: TwoHosts, cluster_data: Path):
    svc = Service(two_hosts, cluster_data)
    yield svc
    svc.stop()


def _kill_raylet_when_busy(cluster: TwoHosts, timeout: float = 300) -> int:
    """Wait until host B runs a unit task (a worker titled ``ray::execute_unit``), then SIGKILL host B's raylet;
    return its pid."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cluster.b.pids_titled("ray::execute_unit"):
            raylets = cluster.b.pids_named("raylet")
            assert len(raylets) == 1, raylets
            os.kill(raylets[0], signal.SIGKILL)
            return raylets[0]
        assert cluster.b.proc.poll() is None, cluster.b.log_tail()
        time.sleep(0.2)
    raise TimeoutError(f"no unit task ran on host B within {timeout:.0f}s")


def test_service_job_with_the_worker_raylet_killed_never_succeeds_with_missing_rows(
        two_hosts: TwoHosts, cluster_data: Path, reference: Path, service: Service):
    """POST /v1/jobs (the service on host A, started by the entrypoint's api role) runs the recipe on the
    cluster; host B's raylet is SIGKILLed while it runs a unit task. The job either succeeds with the identical
    output (Ray retried the lost tasks on host A) or ends ``failed`` with a reason and no committed manifest."""
    spec = yaml.safe_load((REPO / "pipelines" / "commoncrawl.yaml").read_text())
    spec["inputs"] = [{"path": str(cluster_data / "in" / "*.warc.gz"), "format": "warc", "source": "commoncrawl"}]
    spec["output"] = {"path": str(cluster_data / "killed-worker")}
    r = service.request("POST", "/v1/jobs", spec)
    assert r["status"] == 201, r
    job_id = r["body"]["id"]
    pid = _kill_raylet_when_busy(two_hosts)
    deadline = time.time() + 600
    while (job := service.request("GET", f"/v1/jobs/{job_id}")["body"])["status"] not in DONE:
        assert time.time() < deadline, job
        time.sleep(2)
    assert not Path(f"/proc/{pid}").exists()
    assert len(two_hosts.alive_nodes()) == 1  # host B is gone for Ray too
    out = cluster_data / "killed-worker"
    if job["status"] == "succeeded":
        ref, got = _manifest(reference), _manifest(out)
        assert _files(got) == _files(ref)
        assert _rows(out, got) == _rows(reference, ref)
        assert _verify(out).returncode == 0
        served = service.request("GET", f"/v1/jobs/{job_id}/manifest")
        assert served["status"] == 200 and _files(served["body"]) == _files(ref)
    else:
        assert job["status"] == "failed", job
        assert job["error"], job  # the service says why
        assert not (out / "manifest.json").exists()
        verify = _verify(out)
        assert verify.returncode != 0 and json.loads(verify.stdout)["ok"] is False
    print(f"killed raylet {pid} of host B: service job {job['status']} ({job.get('error') or job.get('message')})")
