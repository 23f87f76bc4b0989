"""The FastAPI application: ``create_app(settings)``; ``uvicorn api.app:app`` builds one from the environment.

At startup: migrate the store (Alembic), load tokens, reconcile active jobs with Ray, then refresh job
states in the background every ``poll_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from api.auth import TokenAuth
from api.jobs import JobService
from api.limits import BodyLimitMiddleware
from api.metrics import Metrics, MetricsMiddleware
from api.models import NamedPipeline
from api.paths import Confiner
from api.ray_jobs import RayJobs
from api.routers import dashboard, docs, health, jobs, stages, trainings
from api.settings import Settings
from api.store import Store
from curator import __version__
from curator.spec import PipelineSpec

log = logging.getLogger("api")


async def _poll(svc: JobService, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(svc.refresh)
        except Exception:  # noqa: BLE001 - keep polling whatever one round hit
            log.exception("job refresh failed")


@asynccontextmanager
async def _lifespan(app: FastAPI):
    svc: JobService = app.state.service
    await run_in_threadpool(svc.store.migrate)
    try:
        changed = await asyncio.wait_for(run_in_threadpool(svc.refresh, True), timeout=30)
        log.info("reconciled active jobs with Ray: %d updated", changed)
    except Exception as exc:  # noqa: BLE001 - Ray may come later; the poller retries
        log.warning("startup reconciliation with Ray failed: %s", exc)
    task = asyncio.create_task(_poll(svc, svc.settings.poll_interval_s))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        svc.store.dispose()


def _openapi(app: FastAPI):
    def build():
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (PipelineSpec, NamedPipeline):
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(js.pop("$defs", {}))
            components[model.__name__] = js
        app.openapi_schema = schema
        return schema

    return build


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_url(), schema=settings.db_schema)
    metrics = Metrics(store)
    auth = TokenAuth.from_settings(settings)
    app = FastAPI(
        title="curator job service",
        version=__version__,
        lifespan=_lifespan,
        description="Submit and watch data-curation and training jobs running on Ray.",
        docs_url=None,  # FastAPI's pages load their assets from a CDN: api/routers/docs.py serves local ones
        redoc_url=None,
    )
    if not auth.tokens and not auth.disabled:
        token = secrets.token_urlsafe(24)
        auth = TokenAuth([f"admin+admin:{token}"])
        app.state.generated_token = token
        log.warning("no CURATOR_TOKENS configured: generated a token for this run: %s", token)
    app.state.settings = settings
    app.state.auth = auth
    app.state.metrics = metrics
    app.state.confiner = Confiner(settings.resolved_roots(), settings.allowed_url_prefixes)
    ray = RayJobs(settings.dashboard_address(), settings.ray_token())
    app.state.service = JobService(settings, store, ray, metrics)

    for router in (jobs.router, trainings.router, stages.router, health.router, dashboard.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC), name="static")
    docs.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.openapi = _openapi(app)
    return app


def __getattr__(name: str):
    """``api.app:app`` for uvicorn, built on first access (importing this module has no side effects)."""
    if name == "app":
        globals()["app"] = created = create_app()
        return created
    raise AttributeError(name)
