"""Service settings: CURATOR_* environment variables, and every one of them documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def documented(path: Path) -> set[str]:
    """The variables named in the first column of the settings table."""
    rows = [line.split("|")[1] for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    return {name for cell in rows for name in re.findall(r"`(CURATOR_[A-Z_]+)`", cell)}


def test_every_setting_is_documented():
    fields = {f"CURATOR_{name.upper()}" for name in Settings.model_fields}
    assert documented(REPO / "api" / "SETTINGS.md") == fields
    # the README's shorter table names no setting that does not exist (the full table is api/SETTINGS.md)
    assert documented(REPO / "README.md") <= fields


def test_environment_lists_json_and_limits(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    monkeypatch.setenv("CURATOR_DATA_ROOTS", f" {tmp_path}/a , {tmp_path}/b,")
    monkeypatch.setenv("CURATOR_TOKENS", "alice:x,bob:sha256:" + "0" * 64)
    monkeypatch.setenv("CURATOR_JOB_ENV", '{"PYTHONPATH": "/srv/curator"}')
    monkeypatch.setenv("CURATOR_MAX_BODY_BYTES", "2048")
    s = Settings()
    assert s.data_roots == [f"{tmp_path}/a", f"{tmp_path}/b"] and s.resolved_roots()[1] == tmp_path / "b"
    assert s.tokens == ["alice:x", "bob:sha256:" + "0" * 64]
    assert s.job_env == {"PYTHONPATH": "/srv/curator"} and s.max_body_bytes == 2048
    assert s.db_url() == f"sqlite:///{tmp_path / '.curator' / 'jobs.db'}"
    monkeypatch.setenv("CURATOR_RAY_ADDRESS", "")
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")  # a Ray client address is not a job server
    assert Settings().dashboard_address() is None
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265")
    assert Settings().dashboard_address() == "http://head:8265"
    for name, bad in (("CURATOR_DATA_ROOTS", " , "), ("CURATOR_DB_SCHEMA", "x; drop"), ("CURATOR_PORT", "70000")):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ValidationError):
            Settings()
        monkeypatch.delenv(name)
