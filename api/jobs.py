"""Job lifecycle: submit to Ray, refresh states from Ray, reconcile after a restart, cancel, progress.

Every job is a Ray job whose submission id (``curator-<job id>``) is stored *before* it is submitted, so
a service that dies at any point re-attaches on restart: jobs Ray knows are updated from it, a job that
was stored but never submitted is submitted now, and a job Ray has forgotten (cluster restarted) is
marked failed with that reason. Request handlers only read the store and ``<out>/stats.json``; a
background loop refreshes states from Ray every ``poll_interval_s``.

Outputs belong to owners (api/store.py claims): a job whose output is, lies inside or contains a folder
claimed by another owner is refused with 409, ``overwrite`` or not. Every entrypoint starts with a guard
that exits when ``<state_dir>/jobs/<id>/cancelled`` exists, so a job cancelled while Ray still holds it
pending (waiting for GPUs, say) is cancelled at once here and never runs when Ray starts it later.
A failed job keeps one line saying why: the pipeline's ``error`` from ``stats.json`` (the trainer's from
``progress.json``), else the CLI's ``error:`` line from Ray's message.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api import training
from api.ray_jobs import RayJobs, RayUnavailable
from api.settings import Settings
from api.store import ACTIVE, TERMINAL, IdempotencyConflict, Job, OutputClaim, Store, new_job_id
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


GUARD_PREFIX = "if [ -e "  # how every entrypoint starts (the cancel guard, see cancel_marker)


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
    units = stats.get("units") or {}
    return {
        "status": stats.get("status", "unknown"),
        "updated_at": updated,
        "elapsed_s": round(elapsed, 3) if elapsed is not None else None,
        "docs_per_s": round(inputs.get("records", 0) / elapsed, 2) if elapsed else None,
        "phase": stats.get("phase") or "",
        "units": {k: int(units.get(k, 0)) for k in ("total", "done", "resumed")},
        "eta_s": _eta(stats.get("status"), units, elapsed),
        "inputs": inputs,
        "stages": stages,
        "output": stats.get("output") or {},
        "error": stats.get("error"),
    }


def _eta(status: str | None, units: dict[str, Any], elapsed: float | None) -> float | None:
    """Seconds left, from the input units finished so far in this run (units resumed from an earlier run
    cost nothing); 0 once finished, None before the first unit is done."""
    if status == "succeeded":
        return 0.0
    total, done, resumed = (int(units.get(k, 0)) for k in ("total", "done", "resumed"))
    ran = done - resumed
    if status != "running" or not elapsed or ran <= 0 or total <= 0:
        return None
    return round(elapsed / ran * max(0, total - done), 1)


def training_view(progress: dict[str, Any] | None, metrics: list[dict[str, Any]], limit: int = 400) -> dict | None:
    """The API's view of a training run: the trainer's ``progress.json`` and its loss curve (train and eval
    points from ``metrics.jsonl``, thinned to at most ``limit`` train points)."""
    if progress is None and not metrics:
        return None
    train = [{"step": r["step"], "loss": r["loss"], "tokens_per_s": r.get("tok_per_s")}
             for r in metrics if isinstance(r.get("loss"), int | float) and isinstance(r.get("step"), int)]
    evals = [{"step": r["step"], "loss": r["eval_loss"]}
             for r in metrics if isinstance(r.get("eval_loss"), int | float) and isinstance(r.get("step"), int)]
    if len(train) > limit:
        every = -(-len(train) // limit)
        train = train[::every] + ([train[-1]] if (len(train) - 1) % every else [])
    keys = ("state", "step", "max_steps", "stop_step", "train_loss", "eval_loss", "tokens", "tokens_per_s",
            "elapsed_s", "eta_s", "checkpoint", "error", "updated_at")
    return {**{k: (progress or {}).get(k) for k in keys}, "curve": {"train": train, "eval": evals}}


def read_jsonl(path: Path, max_bytes: int = 8 << 20) -> list[dict[str, Any]]:
    """Records of a JSONL file (its last ``max_bytes``; a torn last line is skipped)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            blob = f.read()
    except OSError:
        return []
    out = []
    for line in blob.splitlines()[1 if size > max_bytes else 0:]:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


_CLI_ERROR = re.compile(r"^error: (.+)$", re.MULTILINE)
_SPEC_ERROR = re.compile(r"^invalid pipeline spec:\s*\n\s+(\S.*)$", re.MULTILINE)
_EXC_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?(\w*(?:Error|Exception)): (.+)$", re.MULTILINE)


def error_line(stats: dict[str, Any] | None, ray_message: str | None) -> str | None:
    """The one line that says why a run failed: the run's own ``error``; else, from Ray's message (which
    quotes the log's tail), the CLI's last ``error:`` line, the first problem of an invalid spec, or the last
    ``SomeError: message`` line; else the message's first line."""
    if stats and stats.get("error"):
        return str(stats["error"]).strip().splitlines()[0][:1000]
    if not ray_message or not ray_message.strip():
        return None
    if found := _CLI_ERROR.findall(ray_message):
        line = found[-1]
    elif found := _SPEC_ERROR.findall(ray_message):
        line = f"invalid pipeline spec: {found[-1]}"
    elif found := _EXC_LINE.findall(ray_message):
        line = ": ".join(found[-1])
    else:
        line = ray_message.strip().splitlines()[0]
    return line.strip()[:1000]


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _overlap(path: str, other: str) -> str:
    if path == other:
        return f"{path} is the output of a job of another user"
    if path.startswith(other.rstrip("/") + "/"):
        return f"{path} lies inside {other}, the output of a job of another user"
    return f"{path} contains {other}, the output of a job of another user"


class DetailCache:
    """A job's serialized detail answer with its owner, reused for ``ttl`` seconds (many clients poll one
    running job); an entry is dropped as soon as this service changes the job."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[str, tuple[float, str, bytes]] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> tuple[str, bytes] | None:
        """(owner, body) while fresh."""
        hit = self._data.get(job_id)
        return (hit[1], hit[2]) if hit and hit[0] > time.monotonic() else None

    def put(self, job_id: str, owner: str, body: bytes) -> None:
        if self.ttl > 0:
            with self._lock:
                if len(self._data) > 1024:  # pollers of many jobs: forget the expired ones
                    now = time.monotonic()
                    self._data = {k: v for k, v in self._data.items() if v[0] > now}
                self._data[job_id] = (time.monotonic() + self.ttl, owner, body)

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
        if clash is not None and clash.owner == owner:
            raise ServiceError(409, f"job {clash.id} is already writing to {out_dir}")
        self._refuse_foreign(self.store.foreign_claim(out_dir, owner), out_dir)

    @staticmethod
    def _refuse_foreign(claim: OutputClaim | None, out_dir: str) -> None:
        if claim is not None:
            raise ServiceError(409, f"output path {_overlap(out_dir, claim.path)}; choose another folder")

    def _claim(self, out_dir: str, owner: str, job_id: str) -> bool:
        """Claim the output for ``owner``; True when this job made the claim (released if Ray never gets it)."""
        clash, created = self.store.claim(out_dir, owner, job_id)
        self._refuse_foreign(clash, out_dir)
        return created

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
        return self._submit(
            kind="curation",
            name=spec.name,
            owner=owner,
            spec=spec.to_dict(),
            out_dir=spec.output.path,
            idempotency_key=idempotency_key,
            body_sha256=body_sha,
        )

    def _submit(self, **fields: Any) -> Submitted:
        """Admit (quota, output ownership), claim the output, store, then launch on Ray."""
        owner, out_dir = fields["owner"], fields["out_dir"]
        self._admit(owner, out_dir)
        job_id = fields.setdefault("id", new_job_id())
        claimed = self._claim(out_dir, owner, job_id)
        try:
            created = self._create(**fields)
        except BaseException:
            if claimed:
                self.store.release(out_dir, job_id)
            raise
        if created.replayed:
            if claimed:
                self.store.release(out_dir, job_id)
        else:
            self._launch(created.job)
        return Submitted(self.store.get(created.job.id) or created.job, created.replayed)

    def submit_training(
        self, principal, req, *, idempotency_key: str | None, body_sha: str, confiner
    ) -> Submitted:
        if not training.trainer_available():
            raise ServiceError(
                501,
                "training is not available: the trainer package (trainer.train) is not installed in this "
                "service's environment",
            )
        owner = principal.name
        replay = self._replay(owner, idempotency_key, body_sha)
        if replay:
            return replay
        parent = self.store.get(req.job_id)
        if parent is None or parent.kind != "curation" or not principal.may_access(parent.owner):
            raise ServiceError(404, f"no curation job {req.job_id}")
        if parent.status != "succeeded":
            raise ServiceError(409, f"job {parent.id} is {parent.status}; training needs a succeeded job")
        args = training.check_args(req.args, confiner)
        job_id = new_job_id()
        out = confiner.output_dir("output", req.output or str(self.settings.resolved_roots()[0] / "trainings" / job_id))
        return self._submit(
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

    def retry(self, job: Job, spec: dict[str, Any] | None = None) -> Submitted:
        """Submit a failed or cancelled job's spec again as a new job of the same owner, into the same
        output (the pipeline continues from the units the earlier run finished; the trainer from its last
        checkpoint). ``spec``: the curation spec re-checked by the caller (paths confined again)."""
        if job.status not in ("failed", "cancelled"):
            raise ServiceError(409, f"job {job.id} is {job.status}; only failed or cancelled jobs can be retried")
        return self._submit(
            kind=job.kind,
            name=job.name,
            owner=job.owner,
            spec=spec if spec is not None else job.spec,
            out_dir=job.out_dir,
            parent_id=job.parent_id,
            resources=job.resources,
            retry_of=job.id,
        )

    def cancel_marker(self, job_id: str) -> Path:
        return self.jobs_dir / job_id / "cancelled"

    def _entrypoint(self, job: Job) -> str:
        """``<guard>; <command>``: the guard exits at once when the job was cancelled before it started."""
        if job.kind == "training":
            command = training.command(
                self.settings.trainer_entrypoint, job.spec["data"], job.spec["run_dir"], job.spec.get("args", {})
            )
        else:
            spec_path = self.jobs_dir / job.id / "spec.json"
            write_json_atomic(spec_path, job.spec)
            command = f"{self.settings.job_entrypoint} run {shlex.quote(str(spec_path))}"
        marker = shlex.quote(str(self.cancel_marker(job.id)))
        note = shlex.quote(f"curator: job {job.id} was cancelled before it started")
        return f"{GUARD_PREFIX}{marker} ]; then echo {note} >&2; exit 1; fi; {command}"

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
        self.store.release(job.out_dir, job.id)  # Ray never got it: it wrote nothing, it claims nothing
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
            own = None
            if job.kind == "curation":
                own = fields["final_stats"] = self.stats_cache.read(job.out_dir)
                if own and (own.get("started_at") or 0) < job.created_at - 1:
                    own = None  # an earlier run's stats
            else:
                own = read_json(Path(job.out_dir) / "progress.json")
            if status == "failed":
                fields["message"] = error_line(own, info.message) or fields.get("message") or job.message
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
        marker = self.cancel_marker(job.id)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()  # from now on the entrypoint's guard exits before running anything
        self._update(job.id, cancel_requested=True)
        try:
            info = self.ray.info(job.submission_id)
            guarded = str(getattr(info, "entrypoint", "") or "").startswith(GUARD_PREFIX)  # not older jobs'
            pending = guarded and str(getattr(info.status, "value", info.status)) == "PENDING"
            self.ray.stop(job.submission_id)
        except KeyError:
            pending = False
        except (RayUnavailable, RuntimeError) as exc:
            raise ServiceError(503, f"could not reach Ray to cancel: {exc}") from None
        if pending:
            # Ray applies a stop only once the job starts (it may wait for resources for long): the guard
            # makes that start a no-op, so the job is cancelled now
            return (
                self._update(
                    job.id,
                    status="cancelled",
                    finished_at=time.time(),
                    message="cancelled while Ray held it pending; it will not run",
                )
                or job
            )
        return self.refresh_one(self.store.get(job.id) or job)

    def progress(self, job: Job) -> dict[str, Any] | None:
        if job.kind != "curation":
            return None
        stats = job.final_stats if job.status in TERMINAL and job.final_stats else self.stats_cache.read(job.out_dir)
        # stats.json from an earlier run into the same folder is not this job's
        if not stats or (stats.get("started_at") or 0) < job.created_at - 1:
            return None
        return progress_of(stats)

    def training_progress(self, job: Job) -> dict[str, Any] | None:
        if job.kind != "training":
            return None
        run = Path(job.out_dir)
        return training_view(read_json(run / "progress.json"), read_jsonl(run / "metrics.jsonl"))

    def output_file(self, job: Job, name: str) -> Path | None:
        path = Path(job.out_dir) / name
        return path if job.status == "succeeded" and path.is_file() else None


__all__ = ["ACTIVE", "JobService", "ServiceError", "Submitted", "error_line", "progress_of", "training_view"]
