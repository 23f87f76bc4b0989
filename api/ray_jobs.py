"""Thin wrapper over Ray's ``JobSubmissionClient``: a lazily (re)connected client, Ray's token auth, and
clear errors.

Ray >= 2.50 turns token authentication on for the clusters it starts: every request to the job server
then needs ``Authorization: Bearer <token>``. The service sends the token it finds, in this order:
``CURATOR_RAY_AUTH_TOKEN``, ``CURATOR_RAY_AUTH_TOKEN_FILE``, ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``,
``~/.ray/auth_token`` (where ``ray start`` keeps the token it made). It sends it explicitly, so it does not
depend on ``RAY_AUTH_MODE`` being set in the service's environment; a cluster without auth ignores it.

All methods block (HTTP to the Ray dashboard); the service calls them from worker threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

NO_TOKEN_HINT = (
    "the Ray cluster has token authentication on and this service sent no token: set CURATOR_RAY_AUTH_TOKEN "
    "(or CURATOR_RAY_AUTH_TOKEN_FILE, RAY_AUTH_TOKEN, ~/.ray/auth_token) to the cluster's token"
)
BAD_TOKEN_HINT = "the Ray cluster rejected this service's token (CURATOR_RAY_AUTH_TOKEN...): it is not the cluster's"


class RayUnavailable(RuntimeError):
    """The Ray job server is not configured, cannot be reached, or refuses this service's credentials."""


DEFAULT_TOKEN_PATH = Path("~/.ray/auth_token")


def find_token(token: str | None = None, token_file: Path | str | None = None) -> str | None:
    """The Ray auth token this service sends, from the first source that has one (module docstring)."""
    if token:
        return token.strip()
    env = os.environ
    for path in (token_file, env.get("RAY_AUTH_TOKEN_PATH")):
        if path:
            try:
                return Path(path).expanduser().read_text(encoding="utf-8").strip() or None
            except OSError as exc:
                raise RuntimeError(f"cannot read the Ray auth token file {path}: {exc.strerror or exc}") from None
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return env["RAY_AUTH_TOKEN"].strip()
    try:
        return DEFAULT_TOKEN_PATH.expanduser().read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


class RayJobs:
    def __init__(self, address: str | None, token: str | None = None) -> None:
        self.address = address.rstrip("/") if address else None
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = None
        self._lock = threading.Lock()

    def client(self):
        if self.address is None:
            raise RayUnavailable("no Ray job server configured (set CURATOR_RAY_ADDRESS)")
        with self._lock:
            if self._client is None:
                from ray.job_submission import JobSubmissionClient

                try:
                    self._client = JobSubmissionClient(self.address, headers=dict(self.headers))
                except Exception as exc:  # noqa: BLE001 - requests/ConnectionError/RuntimeError alike
                    raise RayUnavailable(self._explain(exc, "unreachable")) from exc
            return self._client

    def _explain(self, exc: BaseException, what: str) -> str:
        """One line for a failed call: Ray's authentication errors become what to set."""
        text = str(exc)
        if "Authentication required" in text or "status code 401" in text or "Missing authentication" in text:
            return f"Ray job server {self.address}: {NO_TOKEN_HINT}"
        if "Authentication failed" in text or "status code 403" in text or "Invalid authentication" in text:
            return f"Ray job server {self.address}: {BAD_TOKEN_HINT}"
        return f"Ray job server {self.address} {what}: {_short(exc)}"

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        client = self.client()
        try:
            return getattr(client, method)(*args, **kwargs)
        except RuntimeError as exc:
            if "status code 404" in str(exc):
                raise KeyError(args[0] if args else "job") from exc
            explained = self._explain(exc, "failed")
            if NO_TOKEN_HINT in explained or BAD_TOKEN_HINT in explained:
                raise RayUnavailable(explained) from exc
            raise
        except Exception as exc:  # noqa: BLE001 - connection errors from requests
            raise RayUnavailable(self._explain(exc, "unreachable")) from exc

    def ping(self, timeout: float = 2.0) -> str:
        """The cluster's Ray version, asked with this service's credentials (so a token the cluster would
        refuse, or a missing one, is found here); raises RayUnavailable."""
        if self.address is None:
            raise RayUnavailable("no Ray job server configured (set CURATOR_RAY_ADDRESS)")
        try:
            r = httpx.get(self.address + "/api/version", headers=self.headers, timeout=timeout)
        except httpx.HTTPError as exc:
            raise RayUnavailable(f"Ray job server {self.address} unreachable: {exc}") from exc
        if r.status_code == 401:
            raise RayUnavailable(f"Ray job server {self.address}: {NO_TOKEN_HINT}")
        if r.status_code == 403:
            raise RayUnavailable(f"Ray job server {self.address}: {BAD_TOKEN_HINT}")
        try:
            r.raise_for_status()
            return str(r.json().get("ray_version", "?"))
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise RayUnavailable(f"{self.address} is not a Ray job server: {exc}") from exc

    def submit(self, **kwargs: Any) -> str:
        return self._call("submit_job", **kwargs)

    def jobs(self) -> dict[str, Any]:
        """submission id -> JobDetails of every job the cluster knows."""
        return {j.submission_id: j for j in self._call("list_jobs") if j.submission_id}

    def info(self, submission_id: str):
        return self._call("get_job_info", submission_id)

    def stop(self, submission_id: str) -> bool:
        return self._call("stop_job", submission_id)

    def logs(self, submission_id: str) -> str:
        return self._call("get_job_logs", submission_id)

    async def tail(self, submission_id: str) -> AsyncIterator[str]:
        async for chunk in self.client().tail_job_logs(submission_id):
            yield chunk


def _short(exc: BaseException) -> str:
    """The first line of an error (Ray's authentication errors carry paragraphs of advice)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
