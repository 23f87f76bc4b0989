"""One run at a time per output: an atomic lock object with the run's id, host and a heartbeat.

``_curator/lock.json`` is created exclusively (``O_EXCL`` on a disk, a conditional PUT on S3). While the
run lives, a thread rewrites its heartbeat; a lock whose heartbeat is older than ``stale_after`` seconds,
or whose process is gone on this very host, is stale and may be taken over. The holder re-reads the
lock at every heartbeat and before it commits, so a run whose lock was taken over stops instead of
committing over the new owner's work.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any

from curator.storage import Storage

log = logging.getLogger("curator.lock")
LOCK = "_curator/lock.json"


class OutputLockedError(RuntimeError):
    """Another live run holds the output."""


class LockLostError(RuntimeError):
    """This run's lock was taken over (it was presumed dead): it must not commit."""


def host_id() -> str:
    """This host: its name and its network namespace (separate namespaces are separate hosts)."""
    try:
        ns = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        ns = 0
    return f"{socket.gethostname()}:{ns}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    def __init__(self, storage: Storage, run_id: str, *, stale_after: float = 120.0,
                 heartbeat: float = 10.0) -> None:
        self.storage, self.run_id = storage, run_id
        self.stale_after, self.heartbeat = stale_after, heartbeat
        self.host, self.pid = host_id(), os.getpid()
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def _record(self) -> bytes:
        return json.dumps({"run_id": self.run_id, "host": self.host, "pid": self.pid,
                           "started_at": self.started, "heartbeat_at": time.time()}).encode()

    def stale(self, held: dict[str, Any] | None) -> bool:
        if not held:
            return True  # empty or unreadable: a writer died between create and write
        if held.get("host") == self.host and isinstance(held.get("pid"), int) and not _pid_alive(held["pid"]):
            return True
        return time.time() - float(held.get("heartbeat_at") or 0) > self.stale_after

    def acquire(self) -> None:
        if not self.storage.create_exclusive(LOCK, self._record()):
            held = self.storage.read_json(LOCK)
            if not self.stale(held):
                age = time.time() - float((held or {}).get("heartbeat_at") or 0)
                raise OutputLockedError(
                    f"{self.storage.url} is being written by run {held.get('run_id')} on {held.get('host')} "
                    f"(pid {held.get('pid')}, last heartbeat {age:.0f} s ago); wait for it, or remove "
                    f"{self.storage.url_of(LOCK)} if that run is certainly dead")
            log.warning("taking over the stale lock of run %s (%s)", (held or {}).get("run_id"),
                        (held or {}).get("host"))
            self.storage.delete(LOCK)
            if not self.storage.create_exclusive(LOCK, self._record()):
                raise OutputLockedError(f"another run took the lock of {self.storage.url} at the same moment")
        self._thread = threading.Thread(target=self._beat, name="curator-lock", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self.check()
                self.storage.write_bytes(LOCK, self._record())
            except LockLostError:
                log.error("the output lock was taken over by another run; this run will not commit")
                return
            except Exception as exc:  # noqa: BLE001 - a missed heartbeat is retried
                log.warning("lock heartbeat failed: %s", exc)

    def check(self) -> None:
        """Raise LockLostError unless the lock still names this run."""
        held = self.storage.read_json(LOCK)
        if not held or held.get("run_id") != self.run_id:
            self.lost = True
            raise LockLostError(f"the lock of {self.storage.url} now belongs to run "
                                f"{(held or {}).get('run_id')}; this run stops without committing")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        held = self.storage.read_json(LOCK)
        if held and held.get("run_id") == self.run_id:
            self.storage.delete(LOCK)
