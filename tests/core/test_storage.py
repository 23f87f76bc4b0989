"""Storage on a local disk and on a real S3 API server (moto): whole-or-nothing writes, exclusive create."""

from __future__ import annotations

import hashlib

import pytest

from curator.storage import Storage, sha256_of


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return Storage(str(tmp_path / "out"))
    s3 = request.getfixturevalue("s3_bucket")
    return Storage(f"{s3}/out")


def test_write_read_list_delete(storage):
    storage.write_bytes("a/b.bin", b"hello")
    storage.write_json("c.json", {"x": 1})
    assert storage.read_bytes("a/b.bin") == b"hello"
    assert storage.read_json("c.json") == {"x": 1}
    assert storage.read_json("missing.json") is None
    assert storage.walk_files("") == ["a/b.bin", "c.json"]
    assert storage.size("a/b.bin") == 5
    storage.delete("a/b.bin")
    storage.delete("a/b.bin")  # deleting what is gone is fine
    assert storage.walk_files("") == ["c.json"]


def test_open_write_hashes_and_is_whole_or_nothing(storage):
    with storage.open_write("f.bin") as f:
        f.write(b"x" * 1000)
        f.write(memoryview(b"y" * 24))
    assert f.nbytes == 1024 and f.sha256 == hashlib.sha256(b"x" * 1000 + b"y" * 24).hexdigest()
    assert sha256_of(storage, "f.bin") == f.sha256
    with pytest.raises(RuntimeError):
        with storage.open_write("g.bin") as g:
            g.write(b"partial")
            raise RuntimeError("boom")
    assert not storage.exists("g.bin")
    assert [p for p in storage.walk_files("") if p.startswith("g.bin")] == []


def test_create_exclusive_only_once(storage):
    assert storage.create_exclusive("lock.json", b"first")
    assert not storage.create_exclusive("lock.json", b"second")
    assert storage.read_bytes("lock.json") == b"first"
