"""JobService against a fake Ray job server: reconciliation in every window a service can die in, and
progress read from the pipeline's stats.json (never from logs)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from api.jobs import JobService
from api.settings import Settings
from api.store import Store
from curator.stats import write_json_atomic


class FakeRay:
    """The part of api.ray_jobs.RayJobs the service calls, with jobs held in a dict."""

    def __init__(self) -> None:
        self.known: dict[str, SimpleNamespace] = {}
        self.submitted: list[dict] = []
        self.stopped: list[str] = []

    def set(self, submission_id: str, status: str, **extra) -> None:
        info = {"status": status, "start_time": time.time() * 1000, "end_time": None, "message": None}
        self.known[submission_id] = SimpleNamespace(**{**info, **extra})

    def submit(self, **kwargs) -> str:
        self.submitted.append(kwargs)
        self.set(kwargs["submission_id"], "PENDING", entrypoint=kwargs["entrypoint"])
        return kwargs["submission_id"]

    def jobs(self) -> dict:
        return dict(self.known)

    def info(self, submission_id: str):
        if submission_id not in self.known:
            raise KeyError(submission_id)
        return self.known[submission_id]

    def stop(self, submission_id: str) -> bool:
        self.stopped.append(submission_id)
        self.set(submission_id, "STOPPED")
        return True


@pytest.fixture
def svc(tmp_path):
    settings = Settings(state_dir=tmp_path / "state", data_roots=[str(tmp_path)], ray_address="http://fake")
    store = Store(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.migrate()
    service = JobService(settings, store, FakeRay())
    yield service
    store.dispose()


def stored(svc: JobService, out: str = "/d/out", **fields):
    """A job as the store holds it right after ``create`` (before the submission to Ray)."""
    base = {"kind": "curation", "name": "n", "owner": "alice", "spec": {"name": "n"}, "out_dir": out}
    return svc.store.create(**{**base, **fields})


def test_job_that_reached_ray_before_the_crash_is_reattached(svc):
    """The service died between Ray accepting the job and recording ``submitted_at``: after the restart
    it is followed like any other job (not skipped as "being submitted"), and cancel reaches Ray."""
    job = stored(svc)
    svc.ray.set(job.submission_id, "RUNNING")
    assert svc.refresh(startup=True) == 1
    got = svc.store.get(job.id)
    assert (got.status, svc.ray.submitted) == ("running", [])  # re-attached, not submitted twice
    assert got.submitted_at is not None and got.started_at is not None
    svc.ray.set(job.submission_id, "SUCCEEDED", end_time=time.time() * 1000)
    assert svc.refresh() == 1
    assert svc.store.get(job.id).status == "succeeded"

    other = stored(svc, out="/d/other")
    svc.ray.set(other.submission_id, "RUNNING")
    svc.refresh(startup=True)
    svc.cancel(svc.store.get(other.id))
    assert svc.ray.stopped == [other.submission_id]
    assert svc.store.get(other.id).status == "cancelled"


def test_job_stored_but_never_submitted(svc):
    job = stored(svc)
    assert svc.refresh() == 0 and svc.ray.submitted == []  # a request may be submitting it right now
    assert svc.refresh(startup=True) == 1  # after a restart nobody is: submit it now
    (sub,) = svc.ray.submitted
    assert sub["submission_id"] == job.submission_id
    spec_path = svc.jobs_dir / job.id / "spec.json"
    assert sub["entrypoint"].endswith(f"; curator run {spec_path}") and json.loads(spec_path.read_text()) == job.spec
    assert svc.store.get(job.id).submitted_at is not None
    cancelled = stored(svc, out="/d/c")  # cancelled while the service was submitting it, then it died
    svc.store.update(cancelled.id, cancel_requested=True)
    svc.refresh(startup=True)
    assert svc.store.get(cancelled.id).status == "cancelled" and len(svc.ray.submitted) == 1


def test_job_ray_forgot_is_failed_with_the_reason(svc):
    job = stored(svc)
    svc.store.update(job.id, submitted_at=time.time(), status="running")
    svc.refresh()
    got = svc.store.get(job.id)
    assert got.status == "failed" and got.message.startswith("lost:") and got.finished_at


def test_progress_comes_from_this_runs_stats(svc, tmp_path):
    out = tmp_path / "out"
    job = stored(svc, out=str(out))
    assert svc.progress(job) is None  # nothing written yet
    stats = {
        "status": "running",
        "started_at": job.created_at - 3600,  # an earlier run into the same folder
        "updated_at": job.created_at - 3500,
        "inputs": {"files": 2, "files_done": 1, "records": 100},
        "stages": [{"index": 0, "name": "min_length", "docs_in": 100, "docs_out": 80, "drops": {"too_short": 20}}],
    }
    write_json_atomic(out / "stats.json", stats)
    assert svc.progress(job) is None
    stats.update(started_at=job.created_at + 1, updated_at=job.created_at + 11)
    stats["stages"][0]["seconds"] = 4.0
    write_json_atomic(out / "stats.json", stats)
    p = svc.progress(job)
    assert (p["status"], p["elapsed_s"], p["docs_per_s"]) == ("running", 10.0, 10.0)
    (stage,) = p["stages"]
    assert (stage["docs_in"], stage["docs_out"], stage["drops"]) == (100, 80, {"too_short": 20})
    assert stage["docs_per_s"] == 25.0  # docs in per second of the stage's busy time
    # live: a newer snapshot of the file is what the next read returns
    stats["stages"][0].update(docs_in=150, docs_out=120)
    time.sleep(0.01)
    write_json_atomic(out / "stats.json", stats)
    assert svc.progress(job)["stages"][0]["docs_in"] == 150
    # a finished job keeps the stats it finished with, whatever happens to the folder later
    svc.ray.set(job.submission_id, "SUCCEEDED", end_time=time.time() * 1000)
    svc.store.update(job.id, submitted_at=time.time())
    svc.refresh()
    (out / "stats.json").write_text(json.dumps({**stats, "started_at": job.created_at + 99, "stages": []}))
    assert svc.progress(svc.store.get(job.id))["stages"][0]["docs_in"] == 150


def test_polled_detail_is_reused_until_it_expires_or_the_service_changes_the_job(svc, tmp_path):
    """Pollers share one serialized answer for ``detail_cache_s``; a change made by the service (here a
    cancel) drops it at once, and an expired answer is rebuilt from the store and stats.json."""
    from api.routers.jobs import _detail_json

    out = tmp_path / "out"
    job = stored(svc, out=str(out))
    svc.store.update(job.id, submitted_at=time.time())
    svc.ray.set(job.submission_id, "RUNNING")
    svc.refresh()
    stats = {"status": "running", "started_at": job.created_at + 1, "updated_at": job.created_at + 2,
             "inputs": {"records": 10}, "stages": [{"index": 0, "name": "min_length", "docs_in": 10}]}
    write_json_atomic(out / "stats.json", stats)
    first = _detail_json(svc, job.id)
    assert json.loads(first)["progress"]["stages"][0]["docs_in"] == 10 and svc.details.get(job.id) == ("alice", first)
    stats["stages"][0]["docs_in"] = 25
    time.sleep(0.01)
    write_json_atomic(out / "stats.json", stats)
    assert svc.details.get(job.id) == ("alice", first)  # within the TTL every poller gets the same answer
    svc.cancel(svc.store.get(job.id))
    assert svc.details.get(job.id) is None  # the service changed the job: nothing stale is served
    fresh = json.loads(_detail_json(svc, job.id))
    assert fresh["cancel_requested"] and fresh["progress"]["stages"][0]["docs_in"] == 25
    svc.details.ttl = 0.05
    _detail_json(svc, job.id)
    time.sleep(0.06)
    assert svc.details.get(job.id) is None  # expired


def spec_for(out: str, name: str = "n"):
    from curator.spec import PipelineSpec

    return PipelineSpec.model_validate({"name": name, "inputs": [{"path": "/d/in.jsonl"}], "output": {"path": out}})


def submit(svc: JobService, owner: str, out: str):
    return svc.submit_curation(owner, spec_for(out), idempotency_key=None, body_sha="x").job


def test_a_job_ray_holds_pending_is_cancelled_at_once_and_never_runs(svc, tmp_path):
    """Ray applies a stop only once a job starts; the service cancels a pending job itself and the
    entrypoint's guard makes a later start a no-op."""
    import subprocess

    svc.settings.job_entrypoint = "echo RAN"
    job = submit(svc, "alice", "/d/out")
    assert svc.ray.known[job.submission_id].status == "PENDING"
    entry = svc.ray.submitted[0]["entrypoint"]
    assert subprocess.run(entry, shell=True, capture_output=True, text=True).stdout.startswith("RAN run ")
    got = svc.cancel(svc.store.get(job.id))
    assert (got.status, got.cancel_requested, got.finished_at is not None) == ("cancelled", True, True)
    assert got.message == "cancelled while Ray held it pending; it will not run"
    assert svc.ray.stopped == [job.submission_id] and svc.cancel_marker(job.id).exists()
    ran = subprocess.run(entry, shell=True, capture_output=True, text=True)  # what Ray would start later
    assert (ran.returncode, ran.stdout) == (1, "")
    assert ran.stderr.strip() == f"curator: job {job.id} was cancelled before it started"
    assert svc.store.count_active("alice") == 0  # it no longer counts against the quota
    # a job submitted before entrypoints had the guard is only asked to stop (the fake applies it at once)
    old = stored(svc, out="/d/old")
    svc.store.update(old.id, submitted_at=time.time())
    svc.ray.set(old.submission_id, "PENDING", entrypoint="curator run /x/spec.json")
    got = svc.cancel(svc.store.get(old.id))
    assert svc.ray.stopped[-1] == old.submission_id and "held it pending" not in (got.message or "")


def test_outputs_belong_to_their_owner(svc):
    from api.jobs import ServiceError

    first = submit(svc, "alice", "/d/out")
    for path, why in (("/d/out", "/d/out is the output of a job of another user"),
                      ("/d/out/part", "/d/out/part lies inside /d/out, the output of a job of another user"),
                      ("/d", "/d contains /d/out, the output of a job of another user")):
        with pytest.raises(ServiceError) as info:
            submit(svc, "bob", path)
        assert info.value.status == 409 and str(info.value) == f"output path {why}; choose another folder"
    svc.ray.set(first.submission_id, "SUCCEEDED", end_time=time.time() * 1000)
    svc.refresh()
    with pytest.raises(ServiceError):  # a finished dataset stays hers, overwrite or not
        svc.submit_curation("bob", spec_for("/d/out").model_copy(update={}), idempotency_key=None, body_sha="y")
    assert submit(svc, "alice", "/d/out").owner == "alice"  # she may rebuild her own
    assert submit(svc, "bob", "/d/outer").owner == "bob"


def test_a_submission_ray_never_got_claims_nothing(svc):
    from api.jobs import ServiceError
    from api.ray_jobs import RayUnavailable

    def down(**_):
        raise RayUnavailable("no Ray")

    svc.ray.submit = down
    with pytest.raises(ServiceError) as info:
        submit(svc, "alice", "/d/x")
    assert info.value.status == 503 and svc.store.foreign_claim("/d/x", "bob") is None


def test_failed_jobs_keep_the_runs_one_line_error(svc, tmp_path):
    out = tmp_path / "out"
    job = submit(svc, "alice", str(out))
    write_json_atomic(out / "stats.json", {"status": "failed", "started_at": job.created_at + 1,
                                          "error": "stage langid: in.jsonl: ValueError: bad model\nmore"})
    long_ray = "Job entrypoint command failed with exit code 1, last available logs:\nTraceback...\nerror: x"
    svc.ray.set(job.submission_id, "FAILED", end_time=time.time() * 1000, message=long_ray)
    svc.refresh()
    got = svc.store.get(job.id)
    assert got.status == "failed" and got.message == "stage langid: in.jsonl: ValueError: bad model"
    # no stats (the run failed before it started): the CLI's last "error:" line that Ray's message quotes
    other = submit(svc, "alice", str(tmp_path / "other"))
    svc.ray.set(other.submission_id, "FAILED", message=long_ray + "\nerror: spec: stages[0].x: bad\nfull log: /l")
    svc.refresh()
    assert svc.store.get(other.id).message == "spec: stages[0].x: bad"


def test_retry_resubmits_the_spec_as_a_new_job_of_the_same_owner(svc):
    from api.jobs import ServiceError

    job = submit(svc, "alice", "/d/r")
    with pytest.raises(ServiceError) as info:
        svc.retry(svc.store.get(job.id))
    assert info.value.status == 409 and "only failed or cancelled" in str(info.value)
    svc.ray.set(job.submission_id, "FAILED", end_time=time.time() * 1000, message="boom")
    svc.refresh()
    again = svc.retry(svc.store.get(job.id)).job
    assert again.id != job.id and (again.owner, again.out_dir, again.retry_of) == ("alice", "/d/r", job.id)
    assert again.spec == job.spec and svc.ray.submitted[-1]["submission_id"] == again.submission_id


def test_progress_eta_and_training_view():
    from api.jobs import progress_of, training_view

    stats = {"status": "running", "started_at": 100.0, "updated_at": 160.0, "inputs": {"records": 600},
             "units": {"total": 10, "done": 4, "resumed": 1}, "phase": "phase 1 of 1: map", "stages": []}
    p = progress_of(stats)
    # 3 units ran in 60 s (the resumed one cost nothing): 6 left take 120 s
    assert (p["eta_s"], p["units"], p["phase"], p["docs_per_s"]) == (120.0, {"total": 10, "done": 4, "resumed": 1},
                                                                     "phase 1 of 1: map", 10.0)
    assert progress_of({**stats, "units": {"total": 10, "done": 1, "resumed": 1}})["eta_s"] is None
    assert progress_of({**stats, "status": "succeeded"})["eta_s"] == 0.0
    metrics = [{"step": i, "loss": 10.0 - i / 100, "tok_per_s": 5.0} for i in range(1, 1001)]
    metrics += [{"step": 500, "eval_loss": 6.0}, {"step": 1000, "eval_loss": 5.5}]
    view = training_view({"state": "running", "step": 1000, "max_steps": 2000, "eta_s": 30.0}, metrics)
    train = view["curve"]["train"]
    assert len(train) == 334 and train[0]["step"] == 1 and train[-1] == {"step": 1000, "loss": 0.0, "tokens_per_s": 5.0}
    assert view["curve"]["eval"] == [{"step": 500, "loss": 6.0}, {"step": 1000, "loss": 5.5}]
    assert (view["state"], view["step"], view["eta_s"]) == ("running", 1000, 30.0)
    assert training_view(None, []) is None


def test_error_line_from_rays_message_when_the_run_wrote_none():
    from api.jobs import error_line

    head = "Job entrypoint command failed with exit code 2, last available logs (truncated to 20,000 chars):\n"
    spec = head + "invalid pipeline spec:\n  inputs[0].path: input pattern '/d/x.jsonl' matched no files\n  seed: bad\n"
    first = "inputs[0].path: input pattern '/d/x.jsonl' matched no files"
    assert error_line(None, spec) == f"invalid pipeline spec: {first}"
    trace = head + "Traceback (most recent call last):\n  File \"x\", line 1\nmodule.sub.KeyError: 'text'\n"
    assert error_line(None, trace) == "KeyError: 'text'"
    assert error_line({"error": None}, head) == head.strip()
    assert error_line({"error": "stage pii: a.jsonl: boom"}, trace) == "stage pii: a.jsonl: boom"
    assert error_line(None, None) is None and error_line(None, "  ") is None
