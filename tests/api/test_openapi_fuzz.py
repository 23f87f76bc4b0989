"""Fuzz every operation of the OpenAPI schema with schemathesis (in-process ASGI, no Ray): no 500s.

Without a cluster, 503 (Ray unreachable) and 501 (trainer not installed) are the designed answers; an
unhandled exception is a 500, and any 500 fails."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from service_harness import TOKEN, write_jsonl

from api.app import create_app
from api.settings import Settings

schemathesis = pytest.importorskip("schemathesis")  # dev dependency


def _app():
    tmp = Path(tempfile.mkdtemp(prefix="curator-fuzz-"))
    atexit.register(shutil.rmtree, tmp, True)
    write_jsonl(tmp / "data" / "in.jsonl", ["some text"])
    app = create_app(
        Settings(
            state_dir=tmp / "state",
            data_roots=[str(tmp / "data")],
            tokens=[f"alice:{TOKEN}"],
            ray_address="http://127.0.0.1:9",
            pipelines_dir=tmp / "pipelines",
            max_body_bytes=65536,
        )
    )
    app.state.service.store.migrate()
    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code < 500 or response.status_code in (501, 503), (
        case.method,
        case.formatted_path,
        response.status_code,
        response.text[:500],
    )
