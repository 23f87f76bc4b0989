"""Relative output paths: under CURATOR_DATA_ROOT when set; refused inside a Ray job's working-dir copy."""

from __future__ import annotations

import pytest

from curator.paths import OutputPathError, place_output

COPY = "/tmp/ray/session_1/runtime_resources/working_dir_files/_ray_pkg_0123abcd"


def test_absolute_paths_and_urls_are_kept(monkeypatch):
    monkeypatch.delenv("CURATOR_DATA_ROOT", raising=False)
    assert place_output("/srv/out", cwd=COPY) == "/srv/out"
    assert place_output("s3://bucket/out", cwd=COPY) == "s3://bucket/out"
    assert place_output("out/x", cwd="/home/me/project") == "out/x"


def test_relative_inside_a_job_copy_is_refused_with_the_fix(monkeypatch):
    monkeypatch.delenv("CURATOR_DATA_ROOT", raising=False)
    with pytest.raises(OutputPathError) as err:
        place_output("out/qs", cwd=COPY)
    msg = str(err.value)
    assert "deleted with the job" in msg and "--set output.path=/shared/data/out/qs" in msg
    assert '"CURATOR_DATA_ROOT": "/shared/data"' in msg


def test_data_root_places_relative_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("CURATOR_DATA_ROOT", str(tmp_path))
    assert place_output("out/qs", cwd=COPY) == str(tmp_path / "out" / "qs")
    assert place_output("/abs/out", cwd=COPY) == "/abs/out"
