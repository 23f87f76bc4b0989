"""/v1/jobs: submit, list, inspect, stream logs, cancel, retry, and fetch a finished job's manifest, card and
report. A caller sees only its own jobs (an admin token: every job); another owner's job answers 404."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import Principal, get_job, require_principal, service, visible_job
from api.jobs import JobService, ServiceError
from api.models import JobDetail, JobList, JobOut, SpecErrorOut, Status, SubmitResult, ts
from api.ray_jobs import RayUnavailable
from api.specs import BodyError, build_spec, parse_body
from api.store import Job
from curator.spec import SpecError

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(require_principal)])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[\x21-\x7e]{1,200}$",
        description="retries with the same key return the same job (printable ASCII, no spaces)",
    ),
]
OwnerName = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.@-]{1,100}$", description="an admin's filter")]


def brief(progress: dict | None) -> dict | None:
    if not progress:
        return None
    inputs, stages = progress["inputs"], progress["stages"]
    return {
        "records": inputs.get("records", 0),
        "files_done": inputs.get("files_done", 0),
        "files": inputs.get("files", 0),
        "docs_out": stages[-1]["docs_out"] if stages else None,
    }


def job_out(job: Job, svc: JobService | None = None, progress: dict | None = None) -> dict:
    if svc is not None and progress is None:
        progress = svc.progress(job)
    return {
        "summary": brief(progress),
        "id": job.id,
        "kind": job.kind,
        "name": job.name,
        "status": job.status,
        "owner": job.owner,
        "submission_id": job.submission_id,
        "output_path": job.out_dir,
        "parent_id": job.parent_id,
        "message": job.message,
        "error": job.message if job.status == "failed" else None,
        "retry_of": job.retry_of,
        "cancel_requested": job.cancel_requested,
        "resources": job.resources,
        "created_at": ts(job.created_at),
        "updated_at": ts(job.updated_at),
        "started_at": ts(job.started_at),
        "finished_at": ts(job.finished_at),
    }


def submitted(result, status_code: int = 201) -> JSONResponse:
    body = SubmitResult(
        id=result.job.id,
        status=result.job.status,
        replayed=result.replayed,
        job=JobOut(**job_out(result.job)),
    )
    headers = {"Location": f"/v1/jobs/{result.job.id}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(
        body.model_dump(mode="json"), status_code=200 if result.replayed else status_code, headers=headers
    )


def service_error(exc: ServiceError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


async def _checked_spec(request: Request, svc: JobService, data):
    """The validated, confined spec, or the 422 answer listing the problems."""
    try:
        return await run_in_threadpool(build_spec, data, request.app.state.confiner, svc.settings.pipelines_dir)
    except SpecError as exc:
        return JSONResponse({"detail": "invalid pipeline spec", "errors": exc.errors}, status_code=422)
    except (TypeError, ValueError, OSError, RecursionError) as exc:  # a stage's own check that is not pydantic's
        return JSONResponse(
            {"detail": "invalid pipeline spec", "errors": [f"(spec): {type(exc).__name__}: {exc}"[:500]]},
            status_code=422,
        )


_SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/PipelineSpec"},
                        {"$ref": "#/components/schemas/NamedPipeline"},
                    ]
                }
            },
            "application/yaml": {"schema": {"type": "string", "description": "a pipeline spec in YAML"}},
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=SubmitResult,
    openapi_extra=_SUBMIT_BODY,
    responses={
        200: {"model": SubmitResult, "description": "replayed by Idempotency-Key"},
        422: {"model": SpecErrorOut},
        409: {},
        413: {},
        415: {},
        429: {},
        503: {},
    },
)
async def submit_job(
    request: Request,
    principal: Principal = Depends(require_principal),
    svc: JobService = Depends(service),
    idempotency_key: IdempotencyKey = None,
):
    """Submit a pipeline spec (JSON, YAML, or {"pipeline": NAME, "overrides": {...}}) as a Ray job."""
    raw = await request.body()
    try:
        data = await run_in_threadpool(
            parse_body, raw, request.headers.get("content-type", "application/json"), svc.settings.max_body_depth
        )
    except BodyError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    spec = await _checked_spec(request, svc, data)
    if isinstance(spec, JSONResponse):
        return spec
    body_sha = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()
    try:
        result = await run_in_threadpool(
            svc.submit_curation, principal.name, spec, idempotency_key=idempotency_key, body_sha=body_sha
        )
    except ServiceError as exc:
        raise service_error(exc) from None
    return submitted(result)


def page(svc: JobService, principal: Principal, owner: str | None, **query) -> dict:
    """One page of the jobs the caller may see: its own (an admin: everyone's, or ``owner``'s). A non-admin
    asking for another owner gets an empty page ("none of yours"), not an answer about that owner."""
    if not principal.admin:
        if owner not in (None, principal.name):
            return {"jobs": [], "next_cursor": None}
        owner = principal.name
    cursor = query.pop("cursor")
    rows, nxt = svc.store.list(owner=owner, before=int(cursor) if cursor else None, **query)
    return {"jobs": [job_out(j, svc) for j in rows], "next_cursor": str(nxt) if nxt is not None else None}


@router.get("", response_model=JobList)
def list_jobs(
    principal: Principal = Depends(require_principal),
    svc: JobService = Depends(service),
    status: Status | None = None,
    kind: Annotated[str | None, Query(pattern="^(curation|training)$")] = None,
    owner: OwnerName = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
):
    """Your jobs (an admin: everyone's, or ``owner``'s), newest first; filter by status or kind; page with
    ``cursor``."""
    return page(svc, principal, owner, status=status, kind=kind, limit=limit, cursor=cursor)


@router.get("/{job_id}", response_model=JobDetail, responses={404: {}})
async def get_job_detail(
    job_id: str, principal: Principal = Depends(require_principal), svc: JobService = Depends(service)
):
    """Status, timestamps, the error line of a failed run, live per-stage progress (docs in/out, drops per
    reason, throughput, ETA) and, for a training, its progress and loss curve."""
    # the polled route: an answer cached for a second (``detail_cache_s``) serves every poller of the job's
    # owner; otherwise the store read, file checks and serialization take one worker-thread hop
    hit = svc.details.get(job_id)
    if hit is not None and principal.may_access(hit[0]):
        return Response(hit[1], media_type="application/json")
    body = await run_in_threadpool(_detail_json, svc, job_id, principal)
    return Response(body, media_type="application/json")


def _detail_json(svc: JobService, job_id: str, principal: Principal | None = None) -> bytes:
    job = visible_job(svc, job_id, principal or Principal("", admin=True))
    body = JobDetail.model_validate(_detail(svc, job)).model_dump_json().encode()
    svc.details.put(job_id, job.owner, body)
    return body


def _detail(svc: JobService, job: Job) -> dict:
    progress = svc.progress(job)
    return {
        **job_out(job, svc, progress),
        "spec": job.spec,
        "progress": progress,
        "training": svc.training_progress(job),
        "has_manifest": svc.output_file(job, "manifest.json") is not None,
        "has_report": svc.output_file(job, "report.html") is not None,
    }


@router.get("/{job_id}/logs", response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
async def job_logs(
    job: Job = Depends(get_job),
    svc: JobService = Depends(service),
    follow: bool = True,
    tail: Annotated[int | None, Query(ge=1, le=100_000, description="only the last N lines (no follow)")] = None,
):
    """The job's driver log; with ``follow`` (default) streamed until the job ends."""
    if job.submitted_at is None:
        return PlainTextResponse(f"job {job.id} was never submitted to Ray: {job.message or ''}\n")
    if tail is not None or not follow or job.status not in ("pending", "running"):
        try:
            text = await run_in_threadpool(svc.ray.logs, job.submission_id)
            if tail is not None:
                text = "".join(text.splitlines(keepends=True)[-tail:])
            return PlainTextResponse(text)
        except KeyError:
            raise HTTPException(404, "Ray no longer has this job's logs") from None
        except (RayUnavailable, RuntimeError) as exc:
            raise HTTPException(503, f"cannot read logs from Ray: {exc}") from None
    try:
        await run_in_threadpool(svc.ray.client)
    except RayUnavailable as exc:
        raise HTTPException(503, str(exc)) from None

    async def stream():
        try:
            async for chunk in svc.ray.tail(job.submission_id):
                yield chunk
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the stream already started; say why it ends
            yield f"\n[log stream ended: {exc}]\n"

    return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")


@router.post("/{job_id}/cancel", status_code=202, response_model=JobOut, responses={409: {}, 503: {}})
def cancel_job(job: Job = Depends(get_job), svc: JobService = Depends(service)):
    """Ask Ray to stop the job; it becomes ``cancelled`` once Ray confirms."""
    try:
        return job_out(svc.cancel(job))
    except ServiceError as exc:
        raise service_error(exc) from None


@router.post("/{job_id}/retry", status_code=201, response_model=SubmitResult, responses={404: {}, 409: {}, 422: {},
                                                                                          429: {}, 503: {}})
async def retry_job(request: Request, job: Job = Depends(get_job), svc: JobService = Depends(service)):
    """Submit a failed or cancelled job's spec again as a new job of the same owner into the same output; the
    run continues from what the earlier one finished (curation units, training checkpoints)."""
    spec = None
    if job.kind == "curation":  # the paths are confined again: the tree may have changed since
        checked = await _checked_spec(request, svc, job.spec)
        if isinstance(checked, JSONResponse):
            return checked
        spec = checked.to_dict()
    try:
        result = await run_in_threadpool(svc.retry, job, spec)
    except ServiceError as exc:
        raise service_error(exc) from None
    return submitted(result)


@router.get("/{job_id}/manifest", responses={404: {}})
def job_manifest(job: Job = Depends(get_job), svc: JobService = Depends(service)):
    """The finished dataset's manifest (files, counts, versions, spec)."""
    path = svc.output_file(job, "manifest.json")
    if path is None:
        raise HTTPException(404, f"job {job.id} has no manifest ({job.status})")
    return FileResponse(path, media_type="application/json")


@router.get("/{job_id}/card", response_class=FileResponse, responses={404: {}, 200: {"content": {"text/markdown": {}}}})
def job_card(job: Job = Depends(get_job), svc: JobService = Depends(service)):
    """The finished dataset's card (Hugging Face ``README.md``: counts, splits, sources, how it was made)."""
    path = svc.output_file(job, "README.md")
    if path is None:
        raise HTTPException(404, f"job {job.id} has no dataset card ({job.status})")
    return FileResponse(path, media_type="text/markdown; charset=utf-8")


@router.get("/{job_id}/report", response_class=FileResponse, responses={404: {}, 200: {"content": {"text/html": {}}}})
def job_report(job: Job = Depends(get_job), svc: JobService = Depends(service)):
    """The finished dataset's HTML report."""
    path = svc.output_file(job, "report.html")
    if path is None:
        raise HTTPException(404, f"job {job.id} has no report ({job.status})")
    return FileResponse(path, media_type="text/html")
