"""FastAPI dependencies: the app's job service and settings, the authenticated caller, and a job the caller
may access (another owner's job answers 404, exactly like a job that does not exist)."""

from __future__ import annotations

import re

from fastapi import Depends, HTTPException, Request

from api.auth import Principal, require_principal
from api.jobs import JobService
from api.store import Job

__all__ = ["JOB_ID", "Principal", "get_job", "require_principal", "service", "visible_job"]

JOB_ID = re.compile(r"^j[0-9a-f]{15}$")


async def service(request: Request) -> JobService:
    return request.app.state.service


def visible_job(svc: JobService, job_id: str, principal: Principal) -> Job:
    """The job, if it exists and the caller may see it; 404 otherwise. A malformed id (NUL bytes included)
    never reaches the database."""
    job = svc.store.get(job_id) if JOB_ID.match(job_id) else None
    if job is None or not principal.may_access(job.owner):
        raise HTTPException(404, f"no job {job_id[:40]!r}" if not JOB_ID.match(job_id) else f"no job {job_id}")
    return job


def get_job(request: Request, job_id: str, principal: Principal = Depends(require_principal)) -> Job:
    return visible_job(request.app.state.service, job_id, principal)
