"""/v1/jobs: submit, list, inspect, stream logs, cancel, and fetch a finished job's manifest, card and report."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import Principal, get_job, require_principal, service
from api.jobs import JobService, ServiceError
from api.models import JobDetail, JobList, JobOut, SpecErrorOut, Status, SubmitResult, ts
from api.ray_jobs import RayUnavailable
from api.specs import BodyError, build_spec, parse_body
from api.store import Job
from curator.spec import SpecError

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(require_principal)])

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, description="retries with the same key return the same job"),
]


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
        data = parse_body(raw, request.headers.get("content-type", "application/json"))
    except BodyError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    try:
        spec = await run_in_threadpool(build_spec, data, request.app.state.confiner, svc.settings.pipelines_dir)
    except SpecError as exc:
        return JSONResponse({"detail": "invalid pipeline spec", "errors": exc.errors}, status_code=422)
    body_sha = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()
    try:
        result = await run_in_threadpool(
            svc.submit_curation, principal.name, spec, idempotency_key=idempotency_key, body_sha=body_sha
        )
    except ServiceError as exc:
        raise service_error(exc) from None
    return submitted(result)


@router.get("", response_model=JobList)
def list_jobs(
    svc: JobService = Depends(service),
    status: Status | None = None,
    kind: Annotated[str | None, Query(pattern="^(curation|training)$")] = None,
    owner: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
):
    """Jobs, newest first; filter by status, kind or owner; page with ``cursor``."""
    rows, nxt = svc.store.list(
        status=status, kind=kind, owner=owner, limit=limit, before=int(cursor) if cursor else None
    )
    return {"jobs": [job_out(j, svc) for j in rows], "next_cursor": str(nxt) if nxt is not None else None}


@router.get("/{job_id}", response_model=JobDetail, responses={404: {}})
async def get_job_detail(job_id: str, svc: JobService = Depends(service)):
    """Status, timestamps and live per-stage progress (docs in/out, drops per reason, throughput)."""
    # the polled route: an answer cached for a second (``detail_cache_s``) serves every poller; otherwise the
    # store read, file checks and serialization take one worker-thread hop
    body = svc.details.get(job_id)
    if body is None:
        body = await run_in_threadpool(_detail_json, svc, job_id)
    return Response(body, media_type="application/json")


def _detail_json(svc: JobService, job_id: str) -> bytes:
    body = JobDetail.model_validate(_detail(svc, job_id)).model_dump_json().encode()
    svc.details.put(job_id, body)
    return body


def _detail(svc: JobService, job_id: str) -> dict:
    job = svc.store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    progress = svc.progress(job)
    return {
        **job_out(job, svc, progress),
        "spec": job.spec,
        "progress": progress,
        "has_manifest": svc.output_file(job, "manifest.json") is not None,
        "has_report": svc.output_file(job, "report.html") is not None,
    }


@router.get("/{job_id}/logs", response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
async def job_logs(job: Job = Depends(get_job), svc: JobService = Depends(service), follow: bool = True):
    """The job's driver log; with ``follow`` (default) streamed until the job ends."""
    if job.submitted_at is None:
        return PlainTextResponse(f"job {job.id} was never submitted to Ray: {job.message or ''}\n")
    if not follow or job.status not in ("pending", "running"):
        try:
            return PlainTextResponse(await run_in_threadpool(svc.ray.logs, job.submission_id))
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
