"""/healthz (process up), /readyz (store and Ray reachable) and /metrics (Prometheus)."""

from __future__ import annotations

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


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(request: Request):
    svc = request.app.state.service
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(svc.store.ping)
        checks["store"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any database error means not ready
        checks["store"] = f"error: {type(exc).__name__}: {exc}"[:300]
    try:
        checks["ray"] = "ok (ray " + await run_in_threadpool(svc.ray.ping) + ")"
    except Exception as exc:  # noqa: BLE001
        checks["ray"] = f"error: {exc}"[:300]
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
