"""Format registry: detect_format, expand_inputs, read_file dispatch (local paths and fsspec URLs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import fsspec
import pytest

from curator.readers import detect_format, expand_inputs, read_file
from curator.readers.base import ReadStats

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "examples/data"


@pytest.mark.parametrize("path, fmt", [
    ("CC-MAIN-2024-10/segments/x/warc/CC-MAIN-1.warc.gz", "warc"),
    ("a.warc", "warc"), ("a.warc.zst", "warc"),
    ("CC-MAIN-1.warc.wet.gz", "wet"), ("x.wet.gz", "wet"), ("x.WARC.WET", "wet"),
    ("pile/train/00.jsonl.zst", "jsonl"), ("a.jsonl.gz", "jsonl"), ("a.jsonl", "jsonl"),
    ("a.ndjson", "jsonl"), ("a.json.gz", "jsonl"),
    ("s3://b/part-0.parquet", "parquet"), ("https://h/a.parquet?x=1", "parquet"),
    ("notes.txt", None), ("a.gz", None), ("warc", None),
])
def test_detect_format(path, fmt):
    assert detect_format(path) == fmt


def _touch(root: Path, names: list[str]) -> None:
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        (root / n).write_text("x")


def test_expand_inputs_is_sorted_unique_absolute_and_walks_directories(tmp_path, monkeypatch):
    _touch(tmp_path, ["b.jsonl", "a.jsonl", "sub/c.warc.gz", "sub/readme.txt", "d.parquet"])
    monkeypatch.chdir(tmp_path)
    got = expand_inputs(["*.jsonl", str(tmp_path / "a.jsonl"), "sub"])
    assert got == [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), str(tmp_path / "sub/c.warc.gz")]
    assert expand_inputs("**/*.warc.gz") == [str(tmp_path / "sub/c.warc.gz")]
    assert expand_inputs(str(tmp_path)) == sorted(str(tmp_path / n) for n in
                                                  ["a.jsonl", "b.jsonl", "d.parquet", "sub/c.warc.gz"])


def test_expand_inputs_names_the_pattern_that_matched_nothing(tmp_path):
    _touch(tmp_path, ["a.jsonl"])
    with pytest.raises(FileNotFoundError, match=r"input pattern '.*/\*\.warc\.gz' matched no files"):
        expand_inputs([str(tmp_path / "a.jsonl"), str(tmp_path / "*.warc.gz")])
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        expand_inputs(str(tmp_path / "missing.jsonl"))
    with pytest.raises(FileNotFoundError, match="memory://nowhere"):
        expand_inputs("memory://nowhere/*.jsonl")


def test_fsspec_urls_are_expanded_and_read():
    fs = fsspec.filesystem("memory")
    for i in (2, 1):
        with fs.open(f"/corpus/part-{i}.jsonl", "wb") as f:
            f.write(b"".join(json.dumps({"text": f"p{i} d{j}"}).encode() + b"\n" for j in range(3)))
    try:
        files = expand_inputs("memory://corpus/*.jsonl")
        assert files == ["memory:///corpus/part-1.jsonl", "memory:///corpus/part-2.jsonl"]
        stats = ReadStats()
        texts = [t for f in files for tb in read_file(f, stats=stats) for t in tb.column("text").to_pylist()]
        assert texts == ["p1 d0", "p1 d1", "p1 d2", "p2 d0", "p2 d1", "p2 d2"]
        assert stats.records == 6
    finally:
        fs.rm("/corpus", recursive=True)


def test_file_url_reads_the_same_as_the_path():
    path = str(DATA / "sample.warc.gz")
    by_path = [r for t in read_file(path) for r in t.column("id").to_pylist()]
    by_url = [r for t in read_file("file://" + path) for r in t.column("id").to_pylist()]
    assert by_url == by_path and len(by_path) == 256


def test_read_file_dispatch_errors_and_stats(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text('{"text": "hello"}\n')
    with pytest.raises(ValueError, match="cannot tell the format of .*notes.txt"):
        list(read_file(str(p)))
    with pytest.raises(ValueError, match="unknown input format 'csv'"):
        list(read_file(str(p), format="csv"))
    stats = ReadStats()
    tables = list(read_file(str(p), format="jsonl", stats=stats))
    assert [t.column("text").to_pylist() for t in tables] == [["hello"]]
    assert (stats.path, stats.records, stats.bytes) == (str(p), 1, os.path.getsize(p))


def test_every_bundled_file_reads_by_its_extension():
    counts = {}
    for f in expand_inputs(str(DATA)):
        stats = ReadStats()
        counts[Path(f).name] = sum(t.num_rows for t in read_file(f, stats=stats))
    assert counts == {"sample.jsonl.zst": 470, "sample.warc.gz": 256, "sample.warc.wet.gz": 256}
