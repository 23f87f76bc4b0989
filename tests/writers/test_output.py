"""What in an output folder is curator's: refusing foreign files, and cleaning up only our own."""

from __future__ import annotations

import pytest

from curator.storage import Storage
from curator.writers.output import OutputExistsError, OutputFolder, OutputNotEmptyError, shard_name

KEY_A, KEY_B, KEY_X = "a" * 64, "b" * 64, "c" * 64


def _manifest(*paths: str) -> dict:
    return {"spec_sha256": "0" * 64, "files": [{"path": p, "subset": p.split("/")[0], "rows": 1, "bytes": 1,
                                               "sha256": "0" * 64} for p in paths]}


def _folder(tmp_path, files: dict[str, bytes]) -> OutputFolder:
    storage = Storage(str(tmp_path / "out"))
    for rel, data in files.items():
        storage.write_bytes(rel, data)
    return OutputFolder(storage)


def test_empty_and_missing_folders_are_writable(tmp_path):
    folder = OutputFolder(Storage(str(tmp_path / "nothing-yet")))
    survey = folder.survey(None)
    assert survey.ours == survey.foreign == []
    folder.check_writable(overwrite=False, manifest=None, survey=survey)


def test_foreign_files_are_refused_unless_overwrite(tmp_path):
    folder = _folder(tmp_path, {"train/mine.parquet": b"x", "inputs/sample.jsonl": b"{}"})
    survey = folder.survey(None)
    assert survey.foreign == ["inputs/sample.jsonl", "train/mine.parquet"]
    with pytest.raises(OutputNotEmptyError, match="not a curator output"):
        folder.check_writable(overwrite=False, manifest=None, survey=survey)
    folder.check_writable(overwrite=True, manifest=None, survey=survey)


def test_a_foreign_file_a_run_would_replace_is_refused_even_with_overwrite(tmp_path):
    folder = _folder(tmp_path, {"README.md": b"my notes"})
    with pytest.raises(OutputNotEmptyError, match="README.md"):
        folder.check_writable(overwrite=True, manifest=None, survey=folder.survey(None))


def test_a_finished_run_needs_overwrite(tmp_path):
    listed = shard_name("train", "00000", 0, KEY_A)
    folder = _folder(tmp_path, {listed: b"x", "README.md": b"card", "stats.json": b"{}"})
    folder.storage.write_json("manifest.json", _manifest(listed))
    manifest = folder.manifest()
    survey = folder.survey(manifest)
    assert survey.foreign == []
    with pytest.raises(OutputExistsError):
        folder.check_writable(overwrite=False, manifest=manifest, survey=survey)
    folder.check_writable(overwrite=True, manifest=manifest, survey=survey)


def test_shards_of_announced_keys_are_ours_others_are_not(tmp_path):
    mine, stranger = shard_name("train", "00001", 0, KEY_B), shard_name("train", "00002", 0, KEY_X)
    folder = _folder(tmp_path, {mine: b"x", stranger: b"y", mine + ".tmp-0123abcd": b"z"})
    assert folder.survey(None).foreign == sorted([mine, mine + ".tmp-0123abcd", stranger])
    folder.announce("run1", {}, {KEY_B})
    assert folder.survey(None).foreign == [stranger]


def test_clean_up_deletes_only_superseded_and_unfinished_files_of_ours(tmp_path):
    old, new = shard_name("train", "00000", 0, KEY_A), shard_name("train", "00000", 0, KEY_B)
    unfinished = shard_name("rejected", "p0-00003", 0, KEY_B)
    foreign = "train/users-own.parquet"
    folder = _folder(tmp_path, {old: b"1", new: b"2", unfinished: b"3", foreign: b"4",
                                "_curator/work/p0/x.json": b"{}"})
    folder.announce("run1", {}, {KEY_B})
    deleted = folder.clean_up(_manifest(new), _manifest(old))
    assert deleted == 2
    assert sorted(folder.storage.walk_files("")) == sorted([foreign, new])
