"""Two tokens over real HTTP on a real Ray cluster, on SQLite and on PostgreSQL: each sees, reads and acts
on only its own jobs (another's answers 404, like a job that does not exist); an output owned by another
user's job is refused, whatever ``overwrite`` says; an admin token sees every job."""

from __future__ import annotations

import json

import pytest
from service_harness import ADMIN_TOKEN, OTHER_TOKEN, job_status, tiny_spec, wait_for

pytestmark = pytest.mark.ray

DONE = {"succeeded", "failed", "cancelled"}


def test_jobs_and_outputs_belong_to_their_owner(ray_server):
    data = ray_server.data
    with ray_server.client() as alice, ray_server.client(OTHER_TOKEN) as bob, ray_server.client(ADMIN_TOKEN) as root:
        job_id = alice.post("/v1/jobs", json=tiny_spec(data, "gated-own", "out/own")).json()["id"]
        wait_for(lambda: job_status(alice, job_id, {"running"}), what="alice's job to run")

        # bob: alice's job does not exist for him, on every route
        assert job_id not in {j["id"] for j in bob.get("/v1/jobs").json()["jobs"]}
        assert bob.get("/v1/jobs", params={"owner": "alice"}).json() == {"jobs": [], "next_cursor": None}
        unknown = bob.get("/v1/jobs/j0123456789abcde")
        for method, route in (("GET", ""), ("GET", "/logs"), ("GET", "/logs?follow=false"), ("GET", "/manifest"),
                              ("GET", "/card"), ("GET", "/report"), ("POST", "/cancel"), ("POST", "/retry")):
            r = bob.request(method, f"/v1/jobs/{job_id}{route}")
            assert r.status_code == 404 and r.json()["detail"] == f"no job {job_id}", (route, r.text)
        assert unknown.status_code == 404 and unknown.json()["detail"] == "no job j0123456789abcde"
        r = bob.post("/v1/trainings", json={"job_id": job_id, "gpus": 0})
        assert r.status_code in (404, 501)

        # bob cannot write where alice's job writes: the folder, inside it, around it, overwrite or not
        own = str((data / "out" / "own").resolve())
        for out, overwrite, why in (("out/own", True, f"{own} is the output"), ("out/own/x", False, "lies inside"),
                                    ("out", True, "contains")):
            body = tiny_spec(data, "bob-steal", out)
            body["output"]["overwrite"] = overwrite
            r = bob.post("/v1/jobs", json=body)
            assert r.status_code == 409, r.text
            assert r.json()["detail"].startswith("output path ") and why in r.json()["detail"]
            assert r.json()["detail"].endswith("the output of a job of another user; choose another folder")

        # the admin sees both users' jobs, may filter by owner, and reads alice's job
        bobs = bob.post("/v1/jobs", json=tiny_spec(data, "bob-own", "out/bob-own")).json()["id"]
        owners = {j["id"]: j["owner"] for j in root.get("/v1/jobs", params={"limit": 500}).json()["jobs"]}
        assert owners[job_id] == "alice" and owners[bobs] == "bob"
        assert {j["owner"] for j in root.get("/v1/jobs", params={"owner": "bob"}).json()["jobs"]} == {"bob"}
        assert root.get(f"/v1/jobs/{job_id}").json()["owner"] == "alice"
        assert {j["owner"] for j in alice.get("/v1/jobs", params={"limit": 500}).json()["jobs"]} == {"alice"}

        (ray_server.gates / "gated-own").touch()
        assert wait_for(lambda: job_status(alice, job_id, DONE), what="alice's job")["status"] == "succeeded"
        assert wait_for(lambda: job_status(bob, bobs, DONE), what="bob's job")["status"] == "succeeded"
        manifest = alice.get(f"/v1/jobs/{job_id}/manifest").json()
        assert bob.get(f"/v1/jobs/{job_id}/manifest").status_code == 404
        body = tiny_spec(data, "bob-steal", "out/own")
        body["output"]["overwrite"] = True  # a finished dataset stays alice's
        assert bob.post("/v1/jobs", json=body).status_code == 409
        on_disk = json.loads((data / "out" / "own" / "manifest.json").read_text())
        assert on_disk == manifest and on_disk["counts"]["kept"] == 3


@pytest.mark.parametrize("ray_server", ["sqlite"], indirect=True)  # the store part is the same on both
def test_a_cancelled_job_is_retried_as_a_new_job_of_its_owner(ray_server):
    with ray_server.client() as alice, ray_server.client(OTHER_TOKEN) as bob:
        first = alice.post("/v1/jobs", json=tiny_spec(ray_server.data, "gated-retry", "out/retry")).json()["id"]
        wait_for(lambda: job_status(alice, first, {"running"}), what="job to run")
        assert alice.post(f"/v1/jobs/{first}/retry").status_code == 409  # still running
        assert alice.post(f"/v1/jobs/{first}/cancel").status_code == 202
        wait_for(lambda: job_status(alice, first, DONE), what="cancellation")
        assert bob.post(f"/v1/jobs/{first}/retry").status_code == 404
        (ray_server.gates / "gated-retry").touch()
        r = alice.post(f"/v1/jobs/{first}/retry")
        assert r.status_code == 201, r.text
        again = r.json()["job"]
        assert (again["owner"], again["retry_of"], again["output_path"]) == ("alice", first, str(
            (ray_server.data / "out" / "retry").resolve()))
        done = wait_for(lambda: job_status(alice, again["id"], DONE), what="retried job")
        assert done["status"] == "succeeded" and done["progress"]["output"]["docs"] == 3
