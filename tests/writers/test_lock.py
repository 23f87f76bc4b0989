"""The output lock: one live run per output, stale locks taken over, a lost lock detected."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from curator.storage import Storage
from curator.writers.lock import LOCK, LockLostError, OutputLock, OutputLockedError, host_id


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return Storage(str(tmp_path / "out"))
    return Storage(f"{request.getfixturevalue('s3_bucket')}/out")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_run_is_refused_while_the_first_lives(storage):
    a = OutputLock(storage, "run-a", heartbeat=0.2)
    a.acquire()
    with pytest.raises(OutputLockedError, match="run-a"):
        OutputLock(storage, "run-b").acquire()
    time.sleep(0.5)  # heartbeats keep it fresh
    assert storage.read_json(LOCK)["run_id"] == "run-a"
    a.release()
    assert not storage.exists(LOCK)
    b = OutputLock(storage, "run-b")
    b.acquire()
    b.release()


def test_lock_of_a_dead_process_on_this_host_is_taken_over(storage):
    storage.write_bytes(LOCK, json.dumps({"run_id": "dead", "host": host_id(), "pid": _dead_pid(),
                                          "heartbeat_at": time.time()}).encode())
    lock = OutputLock(storage, "run-new")
    lock.acquire()
    assert storage.read_json(LOCK)["run_id"] == "run-new"
    lock.release()


def test_old_heartbeat_from_another_host_is_stale_a_fresh_one_is_not(storage):
    storage.write_bytes(LOCK, json.dumps({"run_id": "other", "host": "elsewhere:1", "pid": 1,
                                          "heartbeat_at": time.time()}).encode())
    with pytest.raises(OutputLockedError, match="other"):
        OutputLock(storage, "run-new").acquire()
    storage.write_bytes(LOCK, json.dumps({"run_id": "other", "host": "elsewhere:1", "pid": 1,
                                          "heartbeat_at": time.time() - 500}).encode())
    lock = OutputLock(storage, "run-new", stale_after=120)
    lock.acquire()
    lock.release()


def test_a_lock_taken_over_is_noticed_and_not_released_by_the_loser(storage):
    a = OutputLock(storage, "run-a", heartbeat=0.1)
    a.acquire()
    storage.write_bytes(LOCK, json.dumps({"run_id": "run-b", "host": "h:1", "pid": 1,
                                          "heartbeat_at": time.time()}).encode())
    with pytest.raises(LockLostError, match="run-b"):
        a.check()
    time.sleep(0.4)
    assert a.lost
    a.release()
    assert storage.read_json(LOCK)["run_id"] == "run-b"  # not deleted, not overwritten by a heartbeat
