"""``docker/entrypoint.sh`` refuses what it cannot run, with a reason (the roles themselves are run for real in
test_two_hosts.py)."""

from __future__ import annotations

import os
import subprocess

import pytest
from cluster_hosts import ENTRYPOINT


@pytest.mark.parametrize(("role", "env", "message"), [
    ("", {}, "no role given"),
    ("cook", {}, "unknown role 'cook'"),
    ("head", {"RAY_PORT": "6379"}, "RAY_PORT=6379 is Redis's port"),
    ("worker", {"RAY_HEAD": ""}, "worker: set RAY_HEAD"),
])
def test_entrypoint_refuses_a_bad_role_or_setting(role: str, env: dict[str, str], message: str):
    proc = subprocess.run([str(ENTRYPOINT), *([role] if role else [])], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 64
    assert message in proc.stderr
