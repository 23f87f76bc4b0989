"""Job lifecycle: submit to Ray, refresh states from Ray, reconcile after a restart, cancel, progress.

Every job is a Ray job whose submission id (``curator-<job id>``) is stored *before* it is submitted, so
a service that dies at any point re-attaches on restart: jobs Ray knows are updated from it, a job that
was stored but never submitted is submitted now, and a job Ray has forgotten (cluster restarted) is
marked failed with that reason. Request handlers only read the store and ``<out>/stats.json``; a
background loop refreshes states from Ray every ``poll_interval_s``.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api import training
from api.ray_jobs import RayJobs, RayUnavailable
from api.settings import Settings
from api.store import ACTIVE, TERMINAL, IdempotencyConflict, Job, Store, new_job_id
from curator.spec import PipelineSpec
from curator.stats import write_json_atomic

log = logging.getLogger("api.jobs")

RAY_STATUS = {
    "PENDING": "pending",
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "STOPPED": "cancelled",
}


class ServiceError(Exception):
    """An error with an HTTP status (409 conflict, 429 quota, 501, 503 Ray down...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Submitted:
    job: Job
    replayed: bool


class StatsCache:
    """Parsed ``stats.json`` per path, re-read only when the file's mtime changes."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._data: dict[str, tuple[int, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def read(self, out_dir: str) -> dict[str, Any] | None:
        path = os.path.join(out_dir, "stats.json")
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return None
        with self._lock:
            hit = self._data.get(path)
        if hit and hit[0] == mtime:
            return hit[1]
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError):
            return None
        with self._lock:
            if len(self._data) >= self.size:
                self._data.pop(next(iter(self._data)))
            self._data[path] = (mtime, data)
        return data


def progress_of(stats: dict[str, Any]) -> dict[str, Any]:
    """The API's progress view of a ``stats.json`` document (see curator/stats.py)."""
    started, updated = stats.get("started_at"), stats.get("updated_at")
    end = stats.get("finished_at") or updated
    elapsed = (end - started) if started and end else None
    inputs = stats.get("inputs") or {}
    stages = []
    for st in stats.get("stages") or []:
        secs = float(st.get("seconds") or 0.0)
        stages.append(
            {
                **{k: st.get(k, 0) for k in ("index", "name", "docs_in", "docs_out", "chars_in", "chars_out")},
                "drops": st.get("drops") or {},
                "seconds": secs,
                "docs_per_s": round(st.get("docs_in", 0) / secs, 2) if secs > 0 else None,
            }
        )
    return {
        "status": stats.get("status", "unknown"),
        "updated_at": updated,
        "elapsed_s": round(elapsed, 3) if elapsed is not None else None,
        "docs_per_s": round(inputs.get("records", 0) / elapsed, 2) if elapsed else None,
        "inputs": inputs,
        "stages": stages,
        "output": stats.get("output") or {},
        "error": stats.get("error"),
    }


class DetailCache:
    """A job's serialized detail answer, reused for ``ttl`` seconds (many clients poll one running job); an
    entry is dropped as soon as this service changes the job."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> bytes | None:
        hit = self._data.get(job_id)
        return hit[1] if hit and hit[0] > time.monotonic() else None

    def put(self, job_id: str, body: bytes) -> None:
        if self.ttl > 0:
            with self._lock:
                if len(self._data) > 1024:  # pollers of many jobs: forget the expired ones
                    now = time.monotonic()
                    self._data = {k: v for k, v in self._data.items() if v[0] > now}
                self._data[job_id] = (time.monotonic() + self.ttl, body)

    def drop(self, job_id: str) -> None:
        with self._lock:
            self._data.pop(job_id, None)


class JobService:
    def __init__(self, settings: Settings, store: Store, ray: RayJobs, metrics=None) -> None:
        self.settings = settings
        self.store = store
        self.ray = ray
        self.metrics = metrics
        self.stats_cache = StatsCache()
        self.details = DetailCache(settings.detail_cache_s)
        self.jobs_dir = (settings.state_dir / "jobs").resolve()
        self._refresh_lock = threading.Lock()

    def _update(self, job_id: str, **fields: Any) -> Job | None:
        job = self.store.update(job_id, **fields)
        self.details.drop(job_id)
        return job

    # -- submission ------------------------------------------------------------------------------------
    def _replay(self, owner: str, key: str | None, body_sha: str) -> Submitted | None:
        if not key:
            return None
        job = self.store.by_idempotency_key(owner, key)
        if job is None:
            return None
        if job.status == "failed" and job.submitted_at is None:
            # Ray never got it (the client saw a 503): a retry with the same key tries again
            self._update(job.id, idempotency_key=None)
            return None
        if job.body_sha256 != body_sha:
            raise ServiceError(409, "Idempotency-Key was already used with a different request body")
        return Submitted(job, True)

    def _admit(self, owner: str, out_dir: str) -> None:
        if self.store.count_active(owner) >= self.settings.max_active_jobs_per_token:
            raise ServiceError(
                429,
                f"quota reached: {self.settings.max_active_jobs_per_token} active jobs "
                "per token; wait for one to finish or cancel one",
            )
        clash = self.store.active_with_output(out_dir)
        if clash is not None:
            raise ServiceError(409, f"job {clash.id} is already writing to {out_dir}")

    def _create(self, **fields: Any) -> Submitted:
        try:
            return Submitted(self.store.create(**fields), False)
        except IdempotencyConflict as exc:  # a concurrent retry won the race
            if exc.job.body_sha256 != fields.get("body_sha256"):
                raise ServiceError(409, "Idempotency-Key was already used with a different request body") from None
            return Submitted(exc.job, True)

    def submit_curation(
        self, owner: str, spec: PipelineSpec, *, idempotency_key: str | None, body_sha: str
    ) -> Submitted:
        replay = self._replay(owner, idempotency_key, body_sha)
        if replay:
            return replay
        self._admit(owner, spec.output.path)
        created = self._create(
            kind="curation",
            name=spec.name,
            owner=owner,
            spec=spec.to_dict(),
            out_dir=spec.output.path,
            idempotency_key=idempotency_key,
            body_sha256=body_sha,
        )
        if not created.replayed:
            self._launch(created.job)
        return Submitted(self.store.get(created.job.id) or created.job, created.replayed)

    def submit_training(self, owner: str, req, *, idempotency_key: str | None, body_sha: str, confiner) -> Submitted:
        if not training.trainer_available():
            raise ServiceError(
                501,
                "training is not available: the trainer package (trainer.train) is not installed in this "
                "service's environment",
            )
        replay = self._replay(owner, idempotency_key, body_sha)
        if replay:
            return replay
        parent = self.store.get(req.job_id)
        if parent is None or parent.kind != "curation":
            raise ServiceError(404, f"no curation job {req.job_id}")
        if parent.status != "succeeded":
            raise ServiceError(409, f"job {parent.id} is {parent.status}; training needs a succeeded job")
        args = training.check_args(req.args, confiner)
        job_id = new_job_id()
        out = confiner.output_dir("output", req.output or str(self.settings.resolved_roots()[0] / "trainings" / job_id))
        self._admit(owner, out)
        created = self._create(
            id=job_id,
            kind="training",
            name=f"train-{parent.name}",
            owner=owner,
            spec={"data": parent.out_dir, "run_dir": out, "args": args},
            out_dir=out,
            parent_id=parent.id,
            idempotency_key=idempotency_key,
            body_sha256=body_sha,
            resources={"gpus": req.gpus, "cpus": req.cpus},
        )
        if not created.replayed:
            self._launch(created.job)
        return Submitted(self.store.get(created.job.id) or created.job, created.replayed)

    def _entrypoint(self, job: Job) -> str:
        if job.kind == "training":
            return training.command(
                self.settings.trainer_entrypoint, job.spec["data"], job.spec["run_dir"], job.spec.get("args", {})
            )
        spec_path = self.jobs_dir / job.id / "spec.json"
        write_json_atomic(spec_path, job.spec)
        return f"{self.settings.job_entrypoint} run {shlex.quote(str(spec_path))}"

    def _launch(self, job: Job) -> None:
        """Submit a stored job to Ray. On failure the job is marked failed and 503 raised."""
        kwargs: dict[str, Any] = {
            "entrypoint": self._entrypoint(job),
            "submission_id": job.submission_id,
            "metadata": {"curator_job_id": job.id, "owner": job.owner, "kind": job.kind},
        }
        if self.settings.job_env:
            kwargs["runtime_env"] = {"env_vars": dict(self.settings.job_env)}
        if job.resources:
            kwargs["entrypoint_num_gpus"] = job.resources.get("gpus") or None
            kwargs["entrypoint_num_cpus"] = job.resources.get("cpus") or None
        try:
            self.ray.submit(**kwargs)
        except RayUnavailable as exc:
            self._fail_submission(job, exc)
        except RuntimeError as exc:
            if "already exists" not in str(exc):  # else: an earlier attempt reached Ray; it is submitted
                self._fail_submission(job, exc)
        self._update(job.id, submitted_at=time.time())
        self._count(job.kind, "submitted")

    def _fail_submission(self, job: Job, exc: Exception) -> None:
        self._update(job.id, status="failed", finished_at=time.time(), message=f"submission to Ray failed: {exc}")
        self._count(job.kind, "error")
        raise ServiceError(503, f"could not submit to Ray: {exc}") from None

    def _count(self, kind: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.submissions.labels(kind=kind, outcome=outcome).inc()

    # -- state -----------------------------------------------------------------------------------------
    def refresh(self, startup: bool = False) -> int:
        """Bring every active job's state up to date with Ray; returns how many changed. With ``startup``
        (no request is submitting anything yet) a job stored but never submitted is submitted now."""
        with self._refresh_lock:
            active = self.store.active()
            if not active:
                return 0
            try:
                known = self.ray.jobs()
            except (RayUnavailable, RuntimeError, KeyError) as exc:
                log.warning("cannot refresh job states: %s", exc)
                return 0
            changed = 0
            for job in active:
                if job.submitted_at is None and not startup:
                    continue  # being submitted by a request right now
                info = known.get(job.submission_id)
                if info is None:
                    changed += self._unknown_to_ray(job)
                else:
                    changed += self._apply(job, info)
            return changed

    def _unknown_to_ray(self, job: Job) -> int:
        if job.submitted_at is None:
            log.info("job %s was stored but never submitted; submitting it now", job.id)
            if job.cancel_requested:
                self._update(job.id, status="cancelled", finished_at=time.time(), message="cancelled")
                return 1
            try:
                self._launch(job)
            except ServiceError:
                pass
            return 1
        self._update(
            job.id,
            status="failed",
            finished_at=time.time(),
            message="lost: the Ray cluster no longer knows this job (was it restarted?)",
        )
        return 1

    def _apply(self, job: Job, info) -> int:
        status = RAY_STATUS.get(str(getattr(info.status, "value", info.status)), job.status)
        fields: dict[str, Any] = {}
        if job.submitted_at is None:  # it reached Ray, but the service died before it could record that
            fields["submitted_at"] = time.time()
        if status != job.status:
            fields["status"] = status
        if info.start_time and job.started_at is None:
            fields["started_at"] = info.start_time / 1000
        if info.message and info.message != job.message:
            fields["message"] = info.message
        if status in TERMINAL:
            fields["finished_at"] = (info.end_time / 1000) if info.end_time else time.time()
            if job.kind == "curation":
                fields["final_stats"] = self.stats_cache.read(job.out_dir)
        if fields:
            self._update(job.id, **fields)
            return 1
        return 0

    def refresh_one(self, job: Job) -> Job:
        """Update one job from Ray right now (used after cancel); errors leave it as it was."""
        try:
            self._apply(job, self.ray.info(job.submission_id))
        except (RayUnavailable, RuntimeError, KeyError):
            pass
        return self.store.get(job.id) or job

    def cancel(self, job: Job) -> Job:
        if job.status in TERMINAL:
            raise ServiceError(409, f"job {job.id} already {job.status}")
        if job.submitted_at is None:
            return (
                self._update(
                    job.id,
                    status="cancelled",
                    cancel_requested=True,
                    finished_at=time.time(),
                    message="cancelled before submission",
                )
                or job
            )
        self._update(job.id, cancel_requested=True)
        try:
            self.ray.stop(job.submission_id)
        except KeyError:
            pass
        except RayUnavailable as exc:
            raise ServiceError(503, f"could not reach Ray to cancel: {exc}") from None
        return self.refresh_one(self.store.get(job.id) or job)

    def progress(self, job: Job) -> dict[str, Any] | None:
        if job.kind != "curation":
            return None
        stats = job.final_stats if job.status in TERMINAL and job.final_stats else self.stats_cache.read(job.out_dir)
        # stats.json from an earlier run into the same folder is not this job's
        if not stats or (stats.get("started_at") or 0) < job.created_at - 1:
            return None
        return progress_of(stats)

    def output_file(self, job: Job, name: str) -> Path | None:
        path = Path(job.out_dir) / name
        return path if job.status == "succeeded" and path.is_file() else None


__all__ = ["ACTIVE", "JobService", "ServiceError", "Submitted", "progress_of"]
