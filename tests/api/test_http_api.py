"""The service over real HTTP without a Ray cluster, on SQLite and on PostgreSQL: auth, validation, path
confinement, size limits, listing and paging, health and metrics."""

from __future__ import annotations

import importlib.util

import httpx
import pytest
from service_harness import OTHER_TOKEN, TOKEN, write_jsonl


def spec(data, **over):
    base = {
        "name": "tiny",
        "inputs": [{"path": str(data / "in.jsonl")}],
        "stages": [{"stage": "min_length", "min_chars": 10}],
        "output": {"path": str(data / "out")},
    }
    base.update(over)
    return base


@pytest.fixture(scope="module")
def data(plain_server):
    d = plain_server.data
    write_jsonl(d / "in.jsonl", ["short", "a long enough document"])
    outside = plain_server.tmp / "outside"
    write_jsonl(outside / "secret.jsonl", ["do not read me"])
    (d / "link.jsonl").symlink_to(outside / "secret.jsonl")
    (d / "linkdir").symlink_to(outside)
    (d / "deep").mkdir()
    (d / "deep" / "ok.jsonl").write_text((d / "in.jsonl").read_text())
    (d / "deep" / "escape.jsonl").symlink_to(outside / "secret.jsonl")
    return d


def test_auth_missing_wrong_right(plain_server):
    with plain_server.client(token=None) as c:
        r = c.get("/v1/jobs")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert c.get("/v1/jobs", headers={"Authorization": "Basic abc"}).status_code == 401
        assert c.get("/v1/jobs", headers={"Authorization": "Bearer " + TOKEN + "x"}).status_code == 401
        assert c.get("/v1/jobs", headers={"Authorization": "Bearer " + TOKEN}).status_code == 200
        # bob's token is configured only as a sha256 hash
        assert c.get("/v1/jobs", headers={"Authorization": "Bearer " + OTHER_TOKEN}).status_code == 200
        assert c.get("/healthz").status_code == 200
        for method, path in (
            ("GET", "/metrics"),
            ("GET", "/v1/stages"),
            ("POST", "/v1/jobs"),
            ("GET", "/v1/jobs/j0123456789abcde"),
            ("POST", "/v1/jobs/j0123456789abcde/cancel"),
            ("POST", "/v1/trainings"),
        ):
            assert c.request(method, path).status_code == 401, path


def test_every_route_but_health_needs_a_token(plain_server):
    """Walks the OpenAPI schema, so a route added later without auth fails here."""
    schema = httpx.get(plain_server.url + "/openapi.json").json()
    protected = []
    with plain_server.client(token=None) as c:
        for path, operations in schema["paths"].items():
            for method, op in operations.items():
                r = c.request(method.upper(), path.replace("{job_id}", "j0123456789abcde"))
                if path in ("/healthz", "/readyz"):
                    assert r.status_code != 401 and "security" not in op, path
                    continue
                assert r.status_code == 401, (method, path, r.status_code)
                assert op.get("security"), (method, path)  # the schema says so too
                protected.append(f"{method.upper()} {path}")
    assert len(protected) >= 11 and "GET /v1/jobs/{job_id}/logs" in protected and "GET /metrics" in protected


def test_unknown_stage_names_the_field(plain_server, data):
    with plain_server.client() as c:
        r = c.post("/v1/jobs", json=spec(data, stages=[{"stage": "min_length"}, {"stage": "os.system"}]))
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert len(errors) == 1 and errors[0].startswith("stages[1].stage: unknown stage 'os.system'")


def test_bad_parameter_names_the_field(plain_server, data):
    with plain_server.client() as c:
        r = c.post("/v1/jobs", json=spec(data, stages=[{"stage": "min_length", "min_chars": -1, "bogus": 1}]))
    assert r.status_code == 422
    errors = sorted(r.json()["errors"])
    assert [e.split(":")[0] for e in errors] == ["stages[0].bogus", "stages[0].min_chars"]


def test_ray_address_in_spec_is_refused(plain_server, data):
    with plain_server.client() as c:
        r = c.post("/v1/jobs", json=spec(data, ray={"address": "ray://evil:10001"}))
    assert r.status_code == 422 and r.json()["errors"][0].startswith("ray.address")


@pytest.mark.parametrize(
    ("field", "inputs", "output"),
    [
        ("inputs[0].path", "../outside/secret.jsonl", "out"),
        ("inputs[0].path", "deep/../../outside/secret.jsonl", "out"),
        ("inputs[0].path", "/etc/passwd", "out"),
        ("inputs[0].path", "link.jsonl", "out"),  # symlink inside the root to a file outside
        ("inputs[0].path", "linkdir/secret.jsonl", "out"),  # through a symlinked folder
        ("inputs[0].path", "deep/*.jsonl", "out"),  # a glob that matches an escaping symlink
        ("inputs[0].path", "deep", "out"),  # a folder whose files include an escaping symlink
        ("inputs[0].path", "s3://bucket/x.jsonl", "out"),  # remote URLs need an allowed prefix
        ("inputs[0].path", "missing/*.jsonl", "out"),
        ("output.path", "in.jsonl", "/tmp/elsewhere"),
        ("output.path", "in.jsonl", "linkdir/out"),
        ("output.path", "in.jsonl", "../out"),
        ("output.path", "in.jsonl", "."),  # the root itself
    ],
)
def test_path_escapes_are_refused(plain_server, data, field, inputs, output):
    body = {"inputs": [{"path": inputs}], "stages": [], "output": {"path": output}}
    with plain_server.client() as c:
        r = c.post("/v1/jobs", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0].startswith(field + ":"), r.json()


def test_stage_file_parameters_are_confined(plain_server, data):
    body = spec(data, stages=[{"stage": "quality_classifier", "model_path": "/etc/hostname"}])
    with plain_server.client() as c:
        r = c.post("/v1/jobs", json=body)
    assert r.status_code == 422
    assert r.json()["errors"][0].startswith("stages[0].model_path: '/etc/hostname' is outside")


def test_oversized_body_is_refused(plain_server, data):
    big = spec(data, name="x" * 70_000)
    with plain_server.client() as c:
        assert c.post("/v1/jobs", json=big).status_code == 413

        def chunks():  # no Content-Length: the limit is enforced while reading
            for _ in range(100):
                yield b" " * 1024

        r = c.post("/v1/jobs", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert c.get("/healthz").status_code == 200


def test_yaml_bodies_and_media_types(plain_server, data):
    yaml_body = (
        f"inputs:\n  - path: {data / 'in.jsonl'}\nstages:\n  - stage: min_length\n    min_chars: oops\n"
        f"output:\n  path: out\n"
    )
    with plain_server.client() as c:
        r = c.post("/v1/jobs", content=yaml_body, headers={"content-type": "application/yaml"})
        assert r.status_code == 422 and r.json()["errors"][0].startswith("stages[0].min_chars:")
        r = c.post("/v1/jobs", content="inputs: [", headers={"content-type": "application/yaml"})
        assert r.status_code == 400 and "YAML" in r.json()["detail"]
        r = c.post("/v1/jobs", content="{", headers={"content-type": "application/json"})
        assert r.status_code == 400
        r = c.post("/v1/jobs", content="x", headers={"content-type": "text/csv"})
        assert r.status_code == 415
        r = c.post("/v1/jobs", json=[1, 2])
        assert r.status_code == 422 and r.json()["errors"] == ["(spec): must be a mapping"]


def test_named_pipeline_with_overrides(plain_server, data):
    pipes = plain_server.tmp / "pipelines"
    pipes.mkdir(exist_ok=True)
    # relative paths of a named pipeline resolve against the folder holding pipelines/
    (pipes / "tiny.yaml").write_text(
        "inputs:\n  - path: data/in.jsonl\nstages:\n  - stage: min_length\noutput:\n  path: data/out/tiny\n"
    )
    with plain_server.client() as c:
        r = c.post("/v1/jobs", json={"pipeline": "tiny", "overrides": {"stages": [{"stage": "nope"}]}})
        assert r.status_code == 422 and r.json()["errors"][0].startswith("stages[0].stage: unknown stage 'nope'")
        r = c.post("/v1/jobs", json={"pipeline": "tiny", "overrides": {"output": {"shard_size_mb": -1}}})
        assert r.status_code == 422 and r.json()["errors"][0].startswith("output.shard_size_mb:")
        r = c.post("/v1/jobs", json={"pipeline": "../tiny"})
        assert r.status_code == 422 and r.json()["errors"][0].startswith("pipeline:")
        r = c.post("/v1/jobs", json={"pipeline": "absent"})
        assert r.status_code == 422 and "no spec named 'absent'" in r.json()["errors"][0]
        r = c.post("/v1/jobs", json={"pipeline": "tiny", "overrides": {"name": "named", "seed": 7}})
        assert r.status_code == 503  # valid and confined; only Ray is missing
        job = c.get("/v1/jobs", params={"limit": 1}).json()["jobs"][0]
        spec = c.get(f"/v1/jobs/{job['id']}").json()["spec"]
        assert (job["name"], spec["seed"]) == ("named", 7)
        assert spec["inputs"][0]["path"] == str((data / "in.jsonl").resolve())
        assert spec["output"]["path"] == str((data / "out" / "tiny").resolve())


def test_submission_without_ray_fails_clearly_and_is_recorded(plain_server, data):
    with plain_server.client() as c:
        ids = []
        for i in range(3):
            r = c.post("/v1/jobs", json=spec(data, name=f"page{i}", output={"path": f"out/page{i}"}))
            assert r.status_code == 503 and "could not submit to Ray" in r.json()["detail"]
            ids.append(c.get("/v1/jobs", params={"limit": 1}).json()["jobs"][0]["id"])
        detail = c.get(f"/v1/jobs/{ids[0]}").json()
        assert detail["status"] == "failed" and detail["message"].startswith("submission to Ray failed")
        assert detail["output_path"] == str((data / "out" / "page0").resolve())
        assert detail["spec"]["inputs"][0]["path"] == str((data / "in.jsonl").resolve())
        assert detail["progress"] is None and not detail["has_manifest"]
        assert c.get(f"/v1/jobs/{ids[0]}/manifest").status_code == 404
        assert c.get(f"/v1/jobs/{ids[0]}/report").status_code == 404
        assert c.get(f"/v1/jobs/{ids[0]}/card").status_code == 404
        assert c.post(f"/v1/jobs/{ids[0]}/cancel").status_code == 409
        assert "never submitted" in c.get(f"/v1/jobs/{ids[0]}/logs").text
        assert c.get("/v1/jobs/jffffffffffffffff").status_code == 404

        # paging: newest first, each job exactly once across pages
        seen, cursor = [], None
        while True:
            params = {"limit": 2, "status": "failed", **({"cursor": cursor} if cursor else {})}
            page = c.get("/v1/jobs", params=params).json()
            seen += [j["id"] for j in page["jobs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen[:3] == ids[::-1] and len(seen) == len(set(seen))
        assert c.get("/v1/jobs", params={"status": "running"}).json()["jobs"] == []
        assert c.get("/v1/jobs", params={"status": "bogus"}).status_code == 422
        assert c.get("/v1/jobs", params={"owner": "bob"}).json()["jobs"] == []
        metrics = c.get("/metrics").text
        assert 'curator_job_submissions_total{kind="curation",outcome="error"}' in metrics
        failed = [ln for ln in metrics.splitlines() if ln.startswith('curator_jobs{kind="curation",status="failed"}')]
        assert float(failed[0].split()[-1]) >= 3


def test_health_ready_stages(plain_server):
    with plain_server.client(token=None) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["store"] == "ok" and r.json()["checks"]["ray"].startswith("error")
    with plain_server.client() as c:
        stages = {s["name"]: s for s in c.get("/v1/stages").json()}
        assert stages["min_length"]["kind"] == "map"
        assert "min_chars" in stages["min_length"]["params"]["properties"]
        assert (
            'curator_http_request_duration_seconds_count{method="GET",route="/v1/stages",status="200"}'
            in c.get("/metrics").text
        )


def test_training_route_checks_its_job(plain_server, data):
    with plain_server.client() as c:
        r = c.post("/v1/trainings", json={"job_id": "j0123456789abcde", "gpus": 0})
        if importlib.util.find_spec("trainer.train") is None:  # the honest answer without a trainer
            assert r.status_code == 501 and "trainer" in r.json()["detail"]
            return
        assert r.status_code == 404
        failed = c.get("/v1/jobs", params={"status": "failed", "limit": 1}).json()["jobs"]
        if failed:  # a curation job that did not succeed cannot be trained on
            r = c.post("/v1/trainings", json={"job_id": failed[0]["id"], "gpus": 0})
            assert r.status_code == 409 and "needs a succeeded job" in r.json()["detail"]
        assert c.post("/v1/trainings", json={"job_id": "bad", "gpus": 0}).status_code == 422


def test_dashboard_page_is_served(plain_server):
    r = httpx.get(plain_server.url + "/")
    assert r.status_code == 200 and "/static/app.js" in r.text
    assert "drawFunnel" in httpx.get(plain_server.url + "/static/app.js").text


def test_failed_submission_can_be_retried_with_the_same_key(plain_server, data):
    body = spec(data, name="retry", output={"path": "out/retry"})
    with plain_server.client() as c:
        r1 = c.post("/v1/jobs", json=body, headers={"Idempotency-Key": "retry-1"})
        first = c.get("/v1/jobs", params={"limit": 1}).json()["jobs"][0]["id"]
        r2 = c.post("/v1/jobs", json=body, headers={"Idempotency-Key": "retry-1"})
        second = c.get("/v1/jobs", params={"limit": 1}).json()["jobs"][0]["id"]
    # Ray never saw the first attempt, so the retry is a new attempt rather than a replay of the 503
    assert r1.status_code == r2.status_code == 503 and first != second


def test_benchmark_files_resolve_in_the_root_and_are_confined(plain_server, data):
    secret = plain_server.tmp / "outside" / "secret.jsonl"
    with plain_server.client() as c:
        r = c.post("/v1/jobs", json=spec(data, stages=[{"stage": "decontaminate", "benchmarks": [str(secret)]}]))
        assert r.status_code == 422
        assert r.json()["errors"][0].startswith("stages[0].benchmarks[0]: ") and "outside" in r.json()["errors"][0]
        # relative: against the data root (not the service's folder), checked there by the stage
        body = spec(data, name="decon", output={"path": "out/decon"})
        body["stages"] = [{"stage": "decontaminate", "benchmarks": [{"path": "in.jsonl", "name": "own"}]}]
        assert c.post("/v1/jobs", json=body).status_code == 503  # valid and confined; only Ray is missing
        job = c.get("/v1/jobs", params={"limit": 1}).json()["jobs"][0]
        stage = c.get(f"/v1/jobs/{job['id']}").json()["spec"]["stages"][0]
    assert stage["benchmarks"] == [{"path": str((data / "in.jsonl").resolve()), "name": "own"}]
