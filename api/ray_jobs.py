"""Thin wrapper over Ray's ``JobSubmissionClient``: a lazily (re)connected client and clear errors.

All methods block (HTTP to the Ray dashboard); the service calls them from worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx


class RayUnavailable(RuntimeError):
    """The Ray job server is not configured or cannot be reached."""


class RayJobs:
    def __init__(self, address: str | None) -> None:
        self.address = address.rstrip("/") if address else None
        self._client = None
        self._lock = threading.Lock()

    def client(self):
        if self.address is None:
            raise RayUnavailable("no Ray job server configured (set CURATOR_RAY_ADDRESS)")
        with self._lock:
            if self._client is None:
                from ray.job_submission import JobSubmissionClient

                try:
                    self._client = JobSubmissionClient(self.address)
                except Exception as exc:  # noqa: BLE001 - requests/ConnectionError/RuntimeError alike
                    raise RayUnavailable(f"Ray job server {self.address} unreachable: {exc}") from exc
            return self._client

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        client = self.client()
        try:
            return getattr(client, method)(*args, **kwargs)
        except RuntimeError as exc:
            if "status code 404" in str(exc):
                raise KeyError(args[0] if args else "job") from exc
            raise
        except Exception as exc:  # noqa: BLE001 - connection errors from requests
            raise RayUnavailable(f"Ray job server {self.address}: {exc}") from exc

    def ping(self, timeout: float = 2.0) -> str:
        """The cluster's Ray version; raises RayUnavailable."""
        if self.address is None:
            raise RayUnavailable("no Ray job server configured (set CURATOR_RAY_ADDRESS)")
        try:
            r = httpx.get(self.address + "/api/version", timeout=timeout)
            if r.status_code in (401, 403):  # token-auth cluster: it answers; the job client sends the token
                return "reachable, token auth"
            r.raise_for_status()
            return r.json().get("ray_version", "?")
        except (httpx.HTTPError, ValueError) as exc:
            raise RayUnavailable(f"Ray job server {self.address}: {exc}") from exc

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
