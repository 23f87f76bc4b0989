"""Rolling Parquet shards: the bytes depend on the rows only; files appear whole or not at all."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curator.storage import Storage
from curator.writers.shards import ShardWriter, row_sizes

REPO = Path(__file__).resolve().parents[2]


def _rows(start: int, n: int) -> pa.Table:
    return pa.table({"id": [f"d{i:05d}" for i in range(start, start + n)],
                     "text": [f"text {i} " * (1 + i % 17) for i in range(start, start + n)],
                     "score": [float(i) for i in range(start, start + n)]})


def _write(storage: Storage, batches: list[pa.Table], shard_bytes: int, name: str = "data") -> list[dict]:
    w = ShardWriter(storage, name, lambda k: f"{name}/part-{k:03d}.parquet", shard_bytes, group_bytes=900)
    for b in batches:
        w.write(b)
    return w.close()


@pytest.mark.parametrize("sizes", [[500], [1] * 500, [7, 13, 480], [250, 250]])
def test_same_rows_give_the_same_files_whatever_the_batching(tmp_path, sizes):
    rows = _rows(0, 500)
    batches, start = [], 0
    for n in sizes:
        batches.append(rows.slice(start, n))
        start += n
    files = _write(Storage(str(tmp_path / "a")), [rows], 4000)
    again = _write(Storage(str(tmp_path / "b")), batches, 4000)
    assert [(f["path"], f["rows"], f["sha256"]) for f in files] == [(f["path"], f["rows"], f["sha256"]) for f in again]
    assert len(files) > 3
    assert sum(f["rows"] for f in files) == 500


def test_cuts_follow_the_row_size_estimate(tmp_path):
    rows = _rows(0, 300)
    files = _write(Storage(str(tmp_path)), [rows], 5000)
    sizes = row_sizes(rows)
    start = 0
    for f in files[:-1]:  # every file but the last closes at the first row that reaches the target
        cum = sizes[start:start + f["rows"]].cumsum()
        assert cum[-1] >= 5000 and cum[-2] < 5000
        start += f["rows"]
    got = pa.concat_tables([pq.read_table(tmp_path / f["path"]) for f in files])
    assert got.equals(rows)
    for f in files:
        data = (tmp_path / f["path"]).read_bytes()
        assert len(data) == f["bytes"] and hashlib.sha256(data).hexdigest() == f["sha256"]
        assert pq.ParquetFile(tmp_path / f["path"]).metadata.num_rows == f["rows"]


def test_row_groups_are_cut_by_bytes_too(tmp_path):
    files = _write(Storage(str(tmp_path)), [_rows(0, 400)], 10**9)
    assert len(files) == 1
    assert pq.ParquetFile(tmp_path / files[0]["path"]).metadata.num_row_groups > 5


def test_a_batch_with_other_columns_starts_a_new_file(tmp_path):
    a = _rows(0, 10)
    b = _rows(10, 10).append_column("extra", pa.array(["x"] * 10))
    files = _write(Storage(str(tmp_path)), [a, b], 10**9)
    assert [f["rows"] for f in files] == [10, 10]
    assert "extra" in pq.read_schema(tmp_path / files[1]["path"]).names


def test_null_typed_and_missing_columns_conform_to_the_file(tmp_path):
    a = _rows(0, 5).append_column("lang", pa.array(["en"] * 5))
    b = _rows(5, 5).append_column("lang", pa.nulls(5))  # all-null: typed null by Arrow
    c = _rows(10, 5)  # no lang column
    files = _write(Storage(str(tmp_path)), [a, b, c], 10**9)
    assert len(files) == 1
    assert pq.read_table(tmp_path / files[0]["path"]).column("lang").to_pylist() == ["en"] * 5 + [None] * 10


def test_killed_writer_leaves_no_file_under_its_name(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        import pyarrow as pa
        from curator.storage import Storage
        from curator.writers.shards import ShardWriter
        w = ShardWriter(Storage({str(tmp_path)!r}), "data", lambda k: f"data/part-{{k:03d}}.parquet", 10**9,
                        group_bytes=1000)
        for i in range(50):
            w.write(pa.table({{"id": [f"x{{i}}-{{j}}" for j in range(10)], "text": ["y" * 200] * 10}}))
        print("written", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL and "written" in proc.stdout
    names = os.listdir(tmp_path / "data")
    assert names and all(".tmp-" in n for n in names)  # only the unfinished temporary file
    assert not (tmp_path / "data" / "part-000.parquet").exists()


def test_abort_throws_the_file_away(tmp_path):
    w = ShardWriter(Storage(str(tmp_path)), "data", lambda k: f"data/part-{k:03d}.parquet", 10**9, group_bytes=100)
    w.write(_rows(0, 50))
    w.abort()
    assert os.listdir(tmp_path / "data") == []
