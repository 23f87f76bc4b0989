"""Sharded Parquet writer: routing, shard rolling, atomic commit, nothing under a final name until done."""

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

from curator.writers.parquet import ShardWriter, commit_outputs


def _batch(start: int, n: int, drop_every: int = 0, split: bool = False) -> pa.Table:
    ids = [f"d{i:04d}" for i in range(start, start + n)]
    cols = {"id": ids, "text": [f"text {i} " * 20 for i in range(start, start + n)]}
    if drop_every:
        cols["drop_reason"] = [("too_short" if i % drop_every == 0 else None) for i in range(start, start + n)]
        cols["drop_stage"] = [("min_length" if i % drop_every == 0 else None) for i in range(start, start + n)]
    if split:
        cols["split"] = ["eval" if i % 5 == 0 else "train" for i in range(start, start + n)]
    return pa.table(cols)


def test_routes_kept_and_rejected_and_counts(tmp_path):
    w = ShardWriter(tmp_path / "tmp", task_idx=0, shard_bytes=10**9, compression="zstd", write_rejected=True)
    w.add(_batch(0, 30, drop_every=3))
    res = w.close()
    assert res.kept == 20 and res.rejected == 10
    assert res.drops == {"min_length\ttoo_short": 10}
    files = commit_outputs(tmp_path / "out", [res])
    subsets = {f["subset"]: f for f in files}
    kept = pq.read_table(tmp_path / "out" / subsets["data"]["path"])
    rej = pq.read_table(tmp_path / "out" / subsets["rejected"]["path"])
    assert kept.num_rows == 20 and "drop_reason" not in kept.column_names
    assert set(rej.column("drop_reason").to_pylist()) == {"too_short"}
    assert set(kept.column("id").to_pylist()).isdisjoint(rej.column("id").to_pylist())


def test_rejected_rows_with_cleared_text_are_counted_not_written(tmp_path):
    t = _batch(0, 10, drop_every=2)
    text = [None if r else x for r, x in zip(t.column("drop_reason").to_pylist(), t.column("text").to_pylist())]
    t = t.set_column(1, "text", pa.array(text, pa.string()))
    w = ShardWriter(tmp_path / "tmp", 0, 10**9, "zstd", write_rejected=True)
    w.add(t)
    res = w.close()
    assert res.rejected == 5
    assert [f for f in res.files if f[0] == "rejected"] == []


def test_split_column_routes_to_train_and_eval(tmp_path):
    w = ShardWriter(tmp_path / "tmp", 0, 10**9, "zstd", write_rejected=False)
    w.add(_batch(0, 50, split=True))
    files = commit_outputs(tmp_path / "out", [w.close()])
    rows = {f["subset"]: f["rows"] for f in files}
    assert rows == {"eval": 10, "train": 40}


def test_shards_roll_at_target_size_and_commit_in_order(tmp_path):
    results = []
    for task in (1, 0):  # tasks finish out of order
        w = ShardWriter(tmp_path / "tmp", task, shard_bytes=4000, compression="zstd", write_rejected=False)
        for b in range(4):
            w.add(_batch(task * 1000 + b * 20, 20))
        results.append(w.close())
    files = commit_outputs(tmp_path / "out", results)
    assert [f["path"] for f in files] == [f"data/part-{i:05d}.parquet" for i in range(len(files))]
    assert len(files) > 2
    ids = [i for f in files for i in pq.read_table(tmp_path / "out" / f["path"]).column("id").to_pylist()]
    assert ids == sorted(ids)  # task 0's rows first, each task's in order
    assert sum(f["rows"] for f in files) == 160
    for f in files:
        data = (tmp_path / "out" / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"]


def test_killed_writer_leaves_no_final_named_file(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        import pyarrow as pa
        from curator.writers.parquet import ShardWriter
        w = ShardWriter(__import__("pathlib").Path({str(tmp_path / "out" / "_tmp" / "run")!r}), 0, 2000,
                        "zstd", True)
        for i in range(50):
            w.add(pa.table({{"id": [f"x{{i}}-{{j}}" for j in range(10)], "text": ["y" * 200] * 10}}))
        print("written", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL
    assert "written" in proc.stdout
    out = tmp_path / "out"
    tmp_files = list((out / "_tmp").rglob("*.parquet"))
    assert tmp_files, "the writer did write temporary shards before it was killed"
    finals = [p for p in out.rglob("part-*.parquet")]
    assert finals == []
    assert not any(p.name.startswith("part-") for p in out.rglob("*"))
    assert os.path.exists(out / "_tmp")
