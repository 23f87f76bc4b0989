"""Parquet reader: configurable columns, row checks, damaged files."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curator.readers import read_file
from curator.readers.base import ReadStats
from curator.readers.parquet import read_parquet
from curator.schema import CORE_SCHEMA, make_id

BAD = Path(__file__).resolve().parents[2] / "tests/data/bad"


def _rows(path, **kw):
    stats = ReadStats(path=str(path))
    tables = list(read_file(str(path), stats=stats, **kw))
    assert all(t.schema == CORE_SCHEMA for t in tables)
    return [r for t in tables for r in t.to_pylist()], stats


def test_bad_rows_are_counted_across_row_groups_and_good_rows_kept():
    path = BAD / "rows.parquet"
    rows, stats = _rows(path, text_column="body", id_column="key", max_doc_bytes=500, batch_size=2)
    assert [r["text"] for r in rows] == ["first good", "last good"]
    assert [r["id"] for r in rows] == [make_id(str(path), "k1"), make_id(str(path), "k5")]
    assert dict(stats.skipped) == {"missing_text": 1, "nul_bytes": 1, "too_large": 1}
    assert stats.records == 2


def test_row_numbers_are_ids_without_an_id_column_and_meta_columns_are_kept(tmp_path):
    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(7)], "u": [f"https://x/{i}" for i in range(7)],
                             "score": [i / 2 for i in range(7)]}), p, row_group_size=3)
    tables = list(read_parquet(str(p), batch_size=3, url_column="u", meta_columns=["score"],
                               source="mine", file_key="k"))
    assert [t.num_rows for t in tables] == [3, 3, 1]
    rows = [r for t in tables for r in t.to_pylist()]
    assert [r["id"] for r in rows] == [make_id("k", i) for i in range(7)]
    assert [r["url"] for r in rows] == [f"https://x/{i}" for i in range(7)]
    assert json.loads(rows[5]["meta"]) == {"score": 2.5, "file": str(p), "row": 5}
    assert {r["source"] for r in rows} == {"mine"}


def test_binary_text_column_with_invalid_utf8(tmp_path):
    p = tmp_path / "b.parquet"
    pq.write_table(pa.table({"text": pa.array([b"ok", b"\xff\xfe", None, b"fine"], pa.binary())}), p)
    rows, stats = _rows(p)
    assert [r["text"] for r in rows] == ["ok", "fine"]
    assert dict(stats.skipped) == {"invalid_utf8": 1, "missing_text": 1}


def test_missing_column_and_not_a_parquet_file_are_counted_not_raised(tmp_path):
    rows, stats = _rows(BAD / "rows.parquet")  # default text column "text" is absent
    assert rows == [] and stats.skipped == {"missing_column": 1}
    rows, stats = _rows(BAD / "not_parquet.parquet")
    assert rows == [] and stats.skipped == {"corrupt_file": 1}


def test_a_damaged_row_group_keeps_the_rows_before_it():
    rows, stats = _rows(BAD / "bad_row_group.parquet", batch_size=3)
    assert [r["text"].split(" x")[0] for r in rows] == ["doc 0", "doc 1", "doc 2"]
    assert stats.skipped == {"corrupt_stream": 1}


@pytest.mark.parametrize("values", [[["a", "b"], ["c"]], [{"x": "a"}, {"x": "b"}], [1, 2]],
                         ids=["list", "struct", "integer"])
def test_a_text_column_that_is_not_text_skips_the_file_with_a_reason(tmp_path, values):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"text": values}), path)
    stats = ReadStats()
    assert list(read_parquet(str(path), stats=stats)) == []
    assert dict(stats.skipped) == {"bad_text_column": 2}


def test_fuzz_findings_nested_id_column_and_non_utf8_url_bytes(tmp_path):
    """Found by bench/bench_fuzz.py: a list-typed id column raised; invalid UTF-8 URL bytes raised."""
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "id": [[1], [2]]}), nested)
    stats = ReadStats()
    assert list(read_parquet(str(nested), stats=stats, id_column="id")) == []
    assert dict(stats.skipped) == {"bad_id_column": 2}
    raw = tmp_path / "raw.parquet"
    pq.write_table(pa.table({"text": ["a"], "url": pa.array([b"http://x/\xff"], pa.binary())}), raw)
    rows = [r for t in read_parquet(str(raw), url_column="url") for r in t.to_pylist()]
    assert rows[0]["url"] == "http://x/\ufffd"
