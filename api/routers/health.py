"""/healthz (the process answers: a liveness probe, no I/O), /readyz (a job could be submitted now) and
/metrics (Prometheus).

Ready means every check passes: the store answers; the state folder (where submitted specs are written)
and every data root are writable folders; the Ray job server answers with this service's credentials (a
cluster with token auth that refuses or misses the token is not ready). A failed check names the reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import require_principal
from api.metrics import CONTENT_TYPE
from api.models import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz():
    return {"status": "ok", "checks": {}}


def writable(folder: Path) -> str:
    """"ok", or why a job could not write there (a temporary file is made and removed: the real test)."""
    if not folder.is_dir():
        return f"error: {folder} is not a folder"
    try:
        fd, name = tempfile.mkstemp(prefix=".curator-ready-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return f"error: {folder} is not writable: {exc.strerror or exc}"
    return "ok"


def _folder_checks(svc) -> dict[str, str]:
    checks = {"state_dir": writable(svc.jobs_dir.parent)}
    for i, root in enumerate(svc.settings.resolved_roots()):
        checks[f"data_root[{i}]"] = writable(root)
    return checks


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(request: Request):
    svc = request.app.state.service
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(svc.store.ping)
        checks["store"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any database error means not ready
        checks["store"] = f"error: {type(exc).__name__}: {exc}"[:300]
    checks.update(await run_in_threadpool(_folder_checks, svc))
    try:
        checks["ray"] = "ok (ray " + await run_in_threadpool(svc.ray.ping) + ")"
    except Exception as exc:  # noqa: BLE001
        checks["ray"] = f"error: {exc}"[:400]
    ready = all(v.startswith("ok") for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get(
    "/metrics",
    dependencies=[Depends(require_principal)],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(request: Request):
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)
