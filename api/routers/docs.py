"""/docs (Swagger UI) and /redoc (ReDoc) served with no network: the assets come from the locally installed
``fastapi-offline`` package (its ``static/`` folder: swagger-ui-bundle.js, swagger-ui.css,
redoc.standalone.js), mounted at ``/docs-assets``; FastAPI's own pages load them from a CDN."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"

router = APIRouter(include_in_schema=False)


def assets_dir() -> Path | None:
    spec = importlib.util.find_spec("fastapi_offline")  # located, not imported: only its files are used
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


@router.get("/docs")
def swagger_ui():
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="curator job service - API",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        swagger_ui_parameters={"persistAuthorization": True},
    )


@router.get("/redoc")
def redoc():
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="curator job service - API",
        redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc from the local assets; without the package, neither (no blank CDN page)."""
    folder = assets_dir()
    if folder is None:
        return
    app.mount(ASSETS_URL, StaticFiles(directory=folder), name="docs-assets")
    app.include_router(router)
