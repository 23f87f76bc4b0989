"""``docker/entrypoint.sh`` refuses what it cannot run, with a reason (the roles themselves are run for real in
test_two_hosts.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.parametrize(("role", "env", "usage"), [
    ("api", {}, "usage: curator serve"),
    ("train", {}, "usage: curator train"),
    ("train", {"CURATOR_TRAIN_NPROC": "2"}, "usage: python -m trainer train"),  # torchrun, one process per GPU
])
def test_entrypoint_roles_exec_their_programs(role: str, env: dict[str, str], usage: str, tmp_path: Path):
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    proc = subprocess.run([str(ENTRYPOINT), role, "--help"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": path, "CURATOR_ROLE_FILE": str(tmp_path / "role"), **env})
    assert proc.returncode == 0, proc.stderr
    assert usage in proc.stdout
    assert (tmp_path / "role").read_text().strip() == role  # what the health check reads
