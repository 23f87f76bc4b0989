"""End to end: a real uvicorn server submitting real `curator run` jobs to the session's Ray cluster.

Run under ``flock /tmp/ray-tests.lock``. "Long" jobs are gated (see service_harness.GATED_ENTRYPOINT):
they are real Ray jobs that wait for a file before running the real pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from service_harness import (
    OTHER_TOKEN,
    Server,
    drop_pg_schema,
    job_status,
    ray_env,
    require_pg,
    tiny_spec,
    wait_for,
    write_jsonl,
)

pytestmark = pytest.mark.ray

DONE = {"succeeded", "failed", "cancelled"}


def test_job_runs_to_completion_with_progress_and_manifest(ray_server, finished_job):
    job_id = finished_job["id"]
    out = Path(finished_job["output_path"])
    assert out == (ray_server.data / "out" / "tiny").resolve()
    assert finished_job["started_at"] and finished_job["finished_at"]
    p = finished_job["progress"]
    assert p["status"] == "succeeded" and p["inputs"]["records"] == 5
    (stage,) = p["stages"]
    assert (stage["name"], stage["docs_in"], stage["docs_out"], stage["drops"]) == (
        "min_length",
        5,
        3,
        {"too_short": 2},
    )
    assert stage["chars_in"] == 500 and stage["chars_out"] == 450
    assert p["output"]["docs"] == 3
    with ray_server.client() as c:
        manifest = c.get(f"/v1/jobs/{job_id}/manifest").json()
        assert manifest["counts"]["kept"] == 3 and manifest["counts"]["rejected"] == 2
        assert manifest["spec"]["output"]["path"] == str(out)
        assert finished_job["has_manifest"] and finished_job["has_report"]
        report = c.get(f"/v1/jobs/{job_id}/report")
        assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
        assert "<h2>Funnel</h2>" in report.text and report.text == (out / "report.html").read_text()
        card = c.get(f"/v1/jobs/{job_id}/card")
        assert card.status_code == 200 and card.headers["content-type"].startswith("text/markdown")
        assert card.text == (out / "README.md").read_text() and card.text.startswith("---\n")
        logs = c.get(f"/v1/jobs/{job_id}/logs", params={"follow": "false"}).text
        assert "done: 3 kept, 2 rejected" in logs
        with c.stream("GET", f"/v1/jobs/{job_id}/logs") as r:  # streamed form, ends with the job
            assert r.status_code == 200 and "done: 3 kept" in "".join(r.iter_text())
        assert c.post(f"/v1/jobs/{job_id}/cancel").status_code == 409
        listed = {j["id"]: j for j in c.get("/v1/jobs").json()["jobs"]}
        assert listed[job_id]["summary"] == {"records": 5, "files_done": 1, "files": 1, "docs_out": 3}
        metrics = c.get("/metrics").text
        assert 'curator_job_submissions_total{kind="curation",outcome="submitted"}' in metrics
        assert c.get("/readyz").status_code == 200


def test_idempotency_key_returns_the_same_job(ray_server, finished_job):
    body = tiny_spec(ray_server.data, "tiny", "out/tiny")
    with ray_server.client() as c:
        r = c.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 200 and r.json()["replayed"] and r.json()["id"] == finished_job["id"]
        assert r.headers["idempotent-replayed"] == "true"
        # the same key with another body is a client error, not a new job
        other = tiny_spec(ray_server.data, "tiny", "out/tiny2")
        assert c.post("/v1/jobs", json=other, headers={"Idempotency-Key": "k-1"}).status_code == 409
        # another caller's key space is separate (bob submits nothing here, so only alice's job exists)
        assert len(c.get("/v1/jobs", params={"status": "succeeded", "owner": "alice"}).json()["jobs"]) >= 1


def test_cancel_quota_and_output_clash(ray_server, ray_head, finished_job):
    from ray.job_submission import JobSubmissionClient

    ids = []
    with ray_server.client() as c:
        for i in range(3):
            r = c.post("/v1/jobs", json=tiny_spec(ray_server.data, f"gated-c{i}", f"out/c{i}"))
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        running = wait_for(lambda: job_status(c, ids[0], {"running"} | DONE), what="gated job to run")
        assert running["status"] == "running" and running["progress"] is None
        # per-token quota: three active jobs is the configured maximum
        r = c.post("/v1/jobs", json=tiny_spec(ray_server.data, "gated-c9", "out/c9"))
        assert r.status_code == 429 and "quota" in r.json()["detail"]
        with ray_server.client(OTHER_TOKEN) as bob:  # the quota is per token: bob still may
            r = bob.post("/v1/jobs", json=tiny_spec(ray_server.data, "gated-bob", "out/bob"))
            assert r.status_code == 201 and r.json()["job"]["owner"] == "bob", r.text
            bobs = r.json()["id"]
            wait_for(lambda: job_status(bob, bobs, {"running"} | DONE), what="bob's job to run")
            assert c.post(f"/v1/jobs/{bobs}/cancel").status_code == 404  # not alice's to cancel
            assert bob.post(f"/v1/jobs/{bobs}/cancel").status_code == 202
            wait_for(lambda: job_status(bob, bobs, DONE), what="bob's cancellation")
        for job_id in ids[1:]:
            assert c.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
        for job_id in ids[1:]:  # once Ray confirms, they no longer count against the quota
            wait_for(lambda j=job_id: job_status(c, j, DONE), what="cancellation")
        assert str(JobSubmissionClient(ray_head["dashboard"]).get_job_status(f"curator-{bobs}").value) == "STOPPED"
        # an active job owns its output folder
        r = c.post("/v1/jobs", json=tiny_spec(ray_server.data, "gated-clash", "out/c0"))
        assert r.status_code == 409 and ids[0] in r.json()["detail"]
        r = c.post(f"/v1/jobs/{ids[0]}/cancel")
        assert r.status_code == 202 and r.json()["cancel_requested"]
        for job_id in ids:
            done = wait_for(lambda j=job_id: job_status(c, j, DONE), what="cancellation")
            assert done["status"] == "cancelled" and done["finished_at"]
        assert not (ray_server.data / "out" / "c0" / "manifest.json").exists()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_restart_mid_job_reconciles_from_ray(ray_head, tmp_path, backend):
    """Kill the service (SIGKILL) with two jobs running; one finishes while it is down. The restarted
    service reports that one finished at once (startup reconciliation) and re-attaches the other, which
    it can still cancel."""
    if backend == "postgresql":
        require_pg()
    env = ray_env(tmp_path, ray_head["dashboard"], backend)
    write_jsonl(tmp_path / "data" / "in.jsonl", ["x" * (i * 50) for i in range(5)])
    gates = tmp_path / "gates"
    first = Server(env, tmp_path / "a.log").start()
    try:
        with first.client() as c:
            a = c.post("/v1/jobs", json=tiny_spec(tmp_path / "data", "gated-a", "out/a")).json()["id"]
            b = c.post("/v1/jobs", json=tiny_spec(tmp_path / "data", "gated-b", "out/b", 150)).json()["id"]
            for job_id in (a, b):
                wait_for(lambda j=job_id: job_status(c, j, {"running"}), what="gated jobs to run")
    finally:
        first.kill()

    from ray.job_submission import JobSubmissionClient

    ray = JobSubmissionClient(ray_head["dashboard"])
    (gates / "gated-b").touch()
    wait_for(lambda: str(ray.get_job_status(f"curator-{b}").value) in ("SUCCEEDED", "FAILED"), what="job b in Ray")
    second = Server(env, tmp_path / "b.log").start()
    try:
        with second.client() as c:
            jb = c.get(f"/v1/jobs/{b}").json()
            assert jb["status"] == "succeeded", jb
            assert jb["progress"]["stages"][0]["drops"] == {"too_short": 3}
            assert c.get(f"/v1/jobs/{b}/manifest").json()["counts"]["kept"] == 2
            assert c.get(f"/v1/jobs/{a}").json()["status"] == "running"
            assert c.post(f"/v1/jobs/{a}/cancel").status_code == 202
            ja = wait_for(lambda: job_status(c, a, DONE), what="job a cancelled after restart")
            assert ja["status"] == "cancelled"
            assert str(ray.get_job_status(f"curator-{a}").value) == "STOPPED"
            listed = {j["id"]: j["status"] for j in c.get("/v1/jobs").json()["jobs"]}
            assert listed == {a: "cancelled", b: "succeeded"}
    finally:
        second.stop()
        if backend == "postgresql":
            drop_pg_schema(env["CURATOR_DB_SCHEMA"])
    assert json.loads((tmp_path / "data" / "out" / "b" / "manifest.json").read_text())["counts"]["kept"] == 2


def test_training_is_submitted_to_ray_with_its_flags(ray_server, ray_head, finished_job):
    from ray.job_submission import JobSubmissionClient

    body = {"job_id": finished_job["id"], "gpus": 0, "cpus": 1, "args": {"max_steps": 1, "plot": False}}
    with ray_server.client() as c:
        assert c.post("/v1/trainings", json={**body, "args": {"run_dir": "/tmp/x"}}).status_code == 422
        assert c.post("/v1/trainings", json={**body, "args": {"no_such_option": 1}}).status_code == 422
        r = c.post("/v1/trainings", json=body)
        assert r.status_code == 201, r.text
        job = r.json()["job"]
        try:
            assert job["kind"] == "training" and job["parent_id"] == finished_job["id"]
            assert job["resources"] == {"gpus": 0, "cpus": 1}
            trainings = c.get("/v1/trainings").json()["jobs"]  # newest first (other tests may have made some)
            assert trainings[0]["id"] == job["id"] and {j["kind"] for j in trainings} == {"training"}
            with ray_server.client(OTHER_TOKEN) as bob:
                assert job["id"] not in {j["id"] for j in bob.get("/v1/trainings").json()["jobs"]}
            info = JobSubmissionClient(ray_head["dashboard"]).get_job_info(job["submission_id"])
            run_dir = ray_server.data.resolve() / "trainings" / job["id"]
            assert info.entrypoint.endswith(
                f"-m trainer --data {finished_job['output_path']} --run-dir {run_dir} --max-steps 1 --no-plot"
            )
            assert info.metadata["curator_job_id"] == job["id"]
        finally:
            assert c.post(f"/v1/jobs/{job['id']}/cancel").status_code in (202, 409)
        done = wait_for(lambda: job_status(c, job["id"], DONE), what="training to stop")
        assert done["status"] in ("cancelled", "failed")
        # GPUs are asked of Ray for the job's entrypoint: this cluster has none, so Ray holds it pending.
        # Ray applies a stop only once a job starts; the service cancels it at once and the entrypoint's
        # guard makes a later start a no-op
        r = c.post("/v1/trainings", json={**body, "gpus": 1, "cpus": 2})
        assert r.status_code == 201, r.text
        job = r.json()["job"]
        actor = wait_for(lambda: _supervisor(ray_head["dashboard"], job["submission_id"]), what="job actor")
        assert actor["required_resources"] == {"GPU": 1.0, "CPU": 2.0}
        assert actor["state"] == "PENDING_CREATION" and job_status(c, job["id"], {"pending"})
        with ray_server.client(OTHER_TOKEN) as bob:  # not bob's job: as if it did not exist
            assert bob.post(f"/v1/jobs/{job['id']}/cancel").status_code == 404
        r = c.post(f"/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 202 and r.json()["cancel_requested"] and r.json()["status"] == "cancelled", r.text
        assert r.json()["message"] == "cancelled while Ray held it pending; it will not run"
        assert (ray_server.tmp / "state" / "jobs" / job["id"] / "cancelled").exists()
        info = JobSubmissionClient(ray_head["dashboard"]).get_job_info(job["submission_id"])
        assert str(info.status.value) == "PENDING" and info.entrypoint.startswith("if [ -e ")
        assert job_status(c, job["id"], {"cancelled"})  # and it stays so: no longer counted as active


def _supervisor(dashboard: str, submission_id: str) -> dict | None:
    """Ray's actor that runs a job's entrypoint, from the dashboard's state API."""
    import httpx

    r = httpx.get(f"{dashboard}/api/v0/actors", params={"detail": "1", "limit": "1000"}, timeout=10)
    actors = r.json()["data"]["result"]["result"]
    return next((a for a in actors if a["name"] == f"_ray_internal_job_actor_{submission_id}"), None)


@pytest.mark.parametrize("ray_server", ["sqlite"], indirect=True)  # logs come from Ray, not the store
def test_logs_stream_while_the_job_runs(ray_server):
    """Follow the log of a running job: the response starts while the job is still running, and ends
    with the job's last line once it finishes."""
    import threading

    with ray_server.client() as c:
        job_id = c.post("/v1/jobs", json=tiny_spec(ray_server.data, "gated-logs", "out/logs")).json()["id"]
        wait_for(lambda: job_status(c, job_id, {"running"}), what="gated job to run")
        chunks: list[str] = []
        with c.stream("GET", f"/v1/jobs/{job_id}/logs") as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            # the headers came back with the job still running; let it finish while the stream is open
            assert c.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
            threading.Timer(1.0, (ray_server.gates / "gated-logs").touch).start()
            for chunk in r.iter_text():
                chunks.append(chunk)
        assert "done: 3 kept, 2 rejected" in "".join(chunks)
        assert wait_for(lambda: job_status(c, job_id, DONE), what="job to end")["status"] == "succeeded"


@pytest.mark.slow  # about a minute: the whole curation flow on the bundled sample (2 CPUs)
@pytest.mark.parametrize("ray_server", ["sqlite"], indirect=True)
def test_quickstart_pipeline_over_http(ray_server):
    """The project's pipelines/quickstart.yaml, submitted by name with an output override, runs to the
    end; its manifest and its report come back over HTTP."""
    out = ray_server.data / "out" / "quickstart"
    with ray_server.client() as c:
        r = c.post("/v1/jobs", json={"pipeline": "quickstart", "overrides": {"output": {"path": str(out)}}})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        detail = wait_for(lambda: job_status(c, job_id, DONE), timeout=600, interval=0.5, what="quickstart")
        assert detail["status"] == "succeeded", c.get(f"/v1/jobs/{job_id}/logs", params={"follow": "false"}).text[
            -3000:
        ]
        assert detail["spec"]["inputs"][0]["path"].endswith("/examples/data/sample.warc.gz")
        manifest = c.get(f"/v1/jobs/{job_id}/manifest").json()
        stages = [s["name"] for s in detail["progress"]["stages"]]
        assert stages == [s["stage"] for s in manifest["spec"]["stages"]] and "min_length" in stages
        counts = manifest["counts"]
        assert counts["kept"] > 0 and counts["kept"] + counts["rejected"] == detail["progress"]["inputs"]["records"]
        assert counts["kept"] == detail["progress"]["output"]["docs"]
        assert detail["has_manifest"] and detail["has_report"]
        report = c.get(f"/v1/jobs/{job_id}/report")
        assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
        assert all(f"<h2>{h}</h2>" in report.text for h in ("Funnel", "Languages", "Duplicate clusters"))
