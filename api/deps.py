"""FastAPI dependencies: the app's job service and settings, and the authenticated caller."""

from __future__ import annotations

from fastapi import HTTPException, Request

from api.auth import Principal, require_principal
from api.jobs import JobService
from api.store import Job

__all__ = ["Principal", "get_job", "require_principal", "service"]


async def service(request: Request) -> JobService:
    return request.app.state.service


def get_job(request: Request, job_id: str) -> Job:
    job = request.app.state.service.store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job
