"""/healthz stays a cheap liveness answer; /readyz is ready only when a job could be submitted, and names
the reason when not (in-process app, real SQLite, a real dead port for Ray)."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient
from service_harness import free_port

from api.app import create_app
from api.settings import Settings


def test_not_ready_states_name_their_reason(tmp_path):
    roots = [tmp_path / "data", tmp_path / "more"]
    for r in roots:
        r.mkdir()
    dead = f"http://127.0.0.1:{free_port()}"
    app = create_app(Settings(state_dir=tmp_path / "state", data_roots=[str(r) for r in roots], tokens=["a:b"],
                              ray_address=dead))
    with TestClient(app) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "not ready"
        checks = r.json()["checks"]
        assert {k: v for k, v in checks.items() if k != "ray"} == {
            "store": "ok", "state_dir": "ok", "data_root[0]": "ok", "data_root[1]": "ok"}
        assert checks["ray"].startswith(f"error: Ray job server {dead} unreachable: ")
        shutil.rmtree(roots[1])  # a root that went away: a job writing there would fail
        checks = c.get("/readyz").json()["checks"]
        assert checks["data_root[1]"] == f"error: {roots[1]} is not a folder"
        assert checks["data_root[0]"] == "ok" and c.get("/readyz").status_code == 503
        (roots[0] / "x").mkdir()
        roots[0].rename(tmp_path / "moved")
        roots[0].write_text("now a file")
        assert c.get("/readyz").json()["checks"]["data_root[0]"] == f"error: {roots[0]} is not a folder"
        assert c.get("/healthz").json() == {"status": "ok", "checks": {}}  # liveness: no checks at all


def test_a_token_the_job_server_would_refuse_is_not_ready(tmp_path, monkeypatch):
    """A job server that answers 401 (token auth on, no token sent) is not "reachable, so ready"."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ray.init() elsewhere may leave ~/.ray/auth_token
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "CURATOR_RAY_AUTH_TOKEN", "CURATOR_RAY_AUTH_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class TokenAuthServer(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            ok = self.headers.get("Authorization") == "Bearer right"
            body = b'{"ray_version": "2.60.0"}' if ok else b"Unauthorized: Missing authentication token"
            self.send_response(200 if ok else (403 if self.headers.get("Authorization") else 401))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), TokenAuthServer)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    address = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        for token, ready, says in ((None, 503, "sent no token"), ("wrong", 503, "rejected this service's token"),
                                   ("right", 200, "ok (ray 2.60.0)")):
            settings = Settings(state_dir=tmp_path / "state", data_roots=[str(tmp_path)], tokens=["a:b"],
                                ray_address=address, ray_auth_token=token, poll_interval_s=60)
            with TestClient(create_app(settings)) as c:
                r = c.get("/readyz")
                assert r.status_code == ready and says in r.json()["checks"]["ray"], (token, r.json())
    finally:
        srv.shutdown()
