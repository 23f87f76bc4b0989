"""/v1/trainings: train the GPT trainer on a finished curation job's output, as a Ray job with GPUs.

A training is a job of kind ``training``: status, logs and cancel are the /v1/jobs routes.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from api.deps import Principal, require_principal, service
from api.jobs import JobService, ServiceError
from api.models import JobList, SubmitResult, TrainingRequest
from api.paths import PathError
from api.routers.jobs import IdempotencyKey, OwnerName, page, submitted

router = APIRouter(prefix="/v1/trainings", tags=["trainings"], dependencies=[Depends(require_principal)])


@router.post(
    "",
    status_code=201,
    response_model=SubmitResult,
    responses={200: {"model": SubmitResult}, 404: {}, 409: {}, 422: {}, 429: {}, 501: {}, 503: {}},
)
async def submit_training(
    req: TrainingRequest,
    request: Request,
    principal: Principal = Depends(require_principal),
    svc: JobService = Depends(service),
    idempotency_key: IdempotencyKey = None,
):
    """Submit ``python -m trainer --data <job output> --run-dir <output> [--flag value...]`` with the
    requested GPUs. 501 when the trainer is not installed here."""
    body_sha = hashlib.sha256(req.model_dump_json().encode()).hexdigest()
    try:
        result = await run_in_threadpool(
            svc.submit_training,
            principal,
            req,
            idempotency_key=idempotency_key,
            body_sha=body_sha,
            confiner=request.app.state.confiner,
        )
    except ServiceError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except (PathError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    return submitted(result)


@router.get("", response_model=JobList)
def list_trainings(
    principal: Principal = Depends(require_principal),
    svc: JobService = Depends(service),
    owner: OwnerName = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
):
    """Your trainings (an admin: everyone's, or ``owner``'s), newest first."""
    return page(svc, principal, owner, kind="training", limit=limit, cursor=cursor)
