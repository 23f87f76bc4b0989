"""JSON-lines reader: the bundled Pile-style jsonl.zst, options, and bad input."""

from __future__ import annotations

import gzip
import json
import zlib
from collections import Counter
from pathlib import Path

import pytest
import zstandard

from curator.readers import read_file
from curator.readers.base import ReadStats
from curator.readers.jsonl import read_jsonl
from curator.schema import CORE_SCHEMA, make_id

REPO = Path(__file__).resolve().parents[2]
SAMPLE = str(REPO / "examples/data/sample.jsonl.zst")
BAD = REPO / "tests/data/bad"


def _rows(path, **kw) -> tuple[list[dict], ReadStats]:
    stats = ReadStats(path=str(path))
    tables = list(read_file(str(path), stats=stats, **kw))
    assert all(t.schema == CORE_SCHEMA for t in tables)
    return [r for t in tables for r in t.to_pylist()], stats


def test_sample_matches_an_independent_zstd_json_decode():
    with open(SAMPLE, "rb") as f:
        lines = zstandard.ZstdDecompressor().stream_reader(f).read().splitlines()
    expected = [json.loads(x) for x in lines]
    rows, stats = _rows(SAMPLE)
    assert len(rows) == len(expected) == 470 and not stats.skipped
    assert [r["text"] for r in rows] == [e["text"] for e in expected]
    assert Counter(r["source"] for r in rows) == {
        "pile/DebianCopyright": 240, "pile/DebianDocs": 216, "pile/Licenses": 14}
    assert [r["source"] for r in rows] == [f"pile/{e['meta']['pile_set_name']}" for e in expected]
    meta = json.loads(rows[0]["meta"])
    assert meta == {**expected[0]["meta"], "file": SAMPLE, "line": 1}


def test_sample_ids_are_unique_stable_and_keyed_by_line():
    rows, _ = _rows(SAMPLE)
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids) == 470
    assert ids == [r["id"] for r in _rows(SAMPLE)[0]]
    assert ids[:3] == [make_id(SAMPLE, n) for n in (1, 2, 3)]


def test_mixed_bad_lines_are_counted_and_good_lines_kept():
    path = BAD / "mixed.jsonl"
    rows, stats = _rows(path, max_doc_bytes=500)
    assert [r["text"].split(":")[0] for r in rows] == ["good 1", "good 2", "good 3"]
    assert [r["id"] for r in rows] == [make_id(str(path), n) for n in (1, 10, 12)]
    assert dict(stats.skipped) == {"not_object": 1, "missing_text": 2, "invalid_json": 1,
                                   "invalid_utf8": 1, "nul_bytes": 2, "empty_line": 1, "too_large": 1}


def test_options_text_id_url_fields_source_and_file_key(tmp_path):
    p = tmp_path / "docs.jsonl"
    p.write_text("\n".join(json.dumps(o) for o in [
        {"content": "first", "doc": "d-1", "link": "https://a.example/1", "lang": "en"},
        {"content": "second", "link": 7},
        {"content": "third", "doc": 3, "meta": {"pile_set_name": "Ignored"}},
    ]))
    rows, stats = _rows(p, text_field="content", id_field="doc", url_field="link", source="crawl",
                        file_key="docs")
    assert [r["text"] for r in rows] == ["first", "second", "third"] and not stats.skipped
    assert [r["id"] for r in rows] == [make_id("docs", "d-1"), make_id("docs", 2), make_id("docs", 3)]
    assert [r["url"] for r in rows] == ["https://a.example/1", None, None]
    assert {r["source"] for r in rows} == {"crawl"}
    assert json.loads(rows[0]["meta"]) == {"doc": "d-1", "link": "https://a.example/1", "lang": "en",
                                           "file": str(p), "line": 1}


def test_plain_gzip_and_multimember_gzip(tmp_path):
    lines = [json.dumps({"text": f"doc {i}"}).encode() + b"\n" for i in range(10)]
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(b"".join(lines)))
    two_members = gzip.compress(b"".join(lines[:3])) + gzip.compress(b"".join(lines[3:]))
    (tmp_path / "b.jsonl.gz").write_bytes(two_members)
    for name in ("a.jsonl.gz", "b.jsonl.gz"):
        rows, stats = _rows(tmp_path / name)
        assert [r["text"] for r in rows] == [f"doc {i}" for i in range(10)] and not stats.skipped
        assert {r["source"] for r in rows} == {"jsonl"}


def _complete_lines_before_damage(data: bytes, kind: str) -> int:
    """Independent count of the complete lines a damaged stream still holds."""
    out = b""
    if kind == "gzip":
        d = zlib.decompressobj(wbits=31)
        for i in range(len(data)):
            try:
                out += d.decompress(data[i:i + 1])
            except zlib.error:
                break
    else:
        d = zstandard.ZstdDecompressor().decompressobj()
        try:
            for i in range(len(data)):
                out += d.decompress(data[i:i + 1])
        except zstandard.ZstdError:
            pass
    return out.count(b"\n")


@pytest.mark.parametrize("name, kind", [("truncated.jsonl.gz", "gzip"), ("truncated.jsonl.zst", "zstd"),
                                        ("corrupt.jsonl.gz", "gzip")])
def test_damaged_compression_keeps_every_complete_line_before_it(name, kind):
    path = BAD / name
    expected = _complete_lines_before_damage(path.read_bytes(), kind)
    rows, stats = _rows(path)
    assert 10 < expected < 60
    assert [r["text"].split(" ")[1] for r in rows] == [str(i) for i in range(expected)]
    assert dict(stats.skipped) == {"corrupt_stream": 1}


def test_an_oversized_line_is_skipped_in_bounded_reads(tmp_path):
    p = tmp_path / "big.jsonl"
    huge = json.dumps({"text": "z" * (3 << 20)})
    p.write_text("\n".join([json.dumps({"text": "before"}), huge, json.dumps({"text": "after"})]) + "\n")
    rows, stats = _rows(p, max_doc_bytes=1 << 20)
    assert [r["text"] for r in rows] == ["before", "after"]
    assert [r["id"] for r in rows] == [make_id(str(p), 1), make_id(str(p), 3)]
    assert stats.skipped == {"too_large": 1}


def test_last_line_without_newline_and_empty_file(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"text": "one"}\n{"text": "two"}')
    assert [r["text"] for r in _rows(p)[0]] == ["one", "two"]
    rows, stats = _rows(BAD / "empty.jsonl.zst")
    assert rows == [] and stats.skipped == {"empty_file": 1}


def test_read_jsonl_batches():
    sizes = [t.num_rows for t in read_jsonl(SAMPLE, batch_size=200)]
    assert sizes == [200, 200, 70]


def test_stdlib_fallback_gives_the_same_rows(monkeypatch):
    import curator.readers.jsonl as mod

    for path in (BAD / "mixed.jsonl", SAMPLE):
        fast = _rows(path, max_doc_bytes=500)
        with monkeypatch.context() as m:
            m.setattr(mod, "_loads", mod._stdlib_loads)
            slow = _rows(path, max_doc_bytes=500)
        assert slow[0] == fast[0] and slow[1].skipped == fast[1].skipped


def test_a_lone_surrogate_escape_is_invalid_json_not_a_crash(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"text": "ok"}\n{"text": "bad \\ud800 half pair"}\n{"text": "ok too"}\n')
    import curator.readers.jsonl as mod

    for loads in (mod._loads, mod._stdlib_loads):
        with pytest.MonkeyPatch.context() as m:
            m.setattr(mod, "_loads", loads)
            rows, stats = _rows(p)
        assert [r["text"] for r in rows] == ["ok", "ok too"] and stats.skipped == {"invalid_json": 1}


def test_skip_logs_name_the_file_and_the_line_offset(caplog):
    import logging

    path = BAD / "mixed.jsonl"
    data = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger="curator.readers"):
        _rows(path, max_doc_bytes=500)
    second_line = data.index(b"\n") + 1  # "[1, 2, 3]"
    assert f"{path}@{second_line}: not_object line 2" in caplog.text
    unterminated = data.index(b'{"text": "unterminated')
    assert f"{path}@{unterminated}: invalid_json line 5" in caplog.text


@pytest.mark.parametrize("compress", ["none", "gzip", "zstd"])
def test_a_byte_order_mark_does_not_cost_the_first_line(tmp_path, compress):
    data = b"\xef\xbb\xbf" + b"".join(json.dumps({"text": f"line {i}"}).encode() + b"\n" for i in range(3))
    path = tmp_path / {"none": "bom.jsonl", "gzip": "bom.jsonl.gz", "zstd": "bom.jsonl.zst"}[compress]
    path.write_bytes({"none": lambda d: d, "gzip": gzip.compress,
                      "zstd": lambda d: zstandard.ZstdCompressor().compress(d)}[compress](data))
    rows, stats = _rows(path)
    assert [r["text"] for r in rows] == ["line 0", "line 1", "line 2"] and not stats.skipped
