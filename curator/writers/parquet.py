"""Sharded Parquet output written atomically.

Each write task streams its blocks into rolling Parquet files under ``<out>/_tmp/<run_id>/`` (a file is
closed when it reaches the target shard size). Only when every task has finished does the driver rename
them, in a deterministic order, to their final names ``<out>/<subset>/part-00000.parquet`` ... Subsets are
``data`` (kept documents; ``train``/``eval`` when a ``split`` column exists) and ``rejected`` (dropped
documents with ``drop_reason`` and ``drop_stage``). A killed run therefore never leaves a file under a
final name, and a finished file is never half-written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curator.schema import DROP_REASON, DROP_STAGE

SPLIT_COLUMN = "split"


@dataclass
class TaskOutput:
    """What one write task produced: temporary files and counts."""

    task_idx: int
    files: list[tuple[str, str, int]] = field(default_factory=list)  # (subset, tmp path, rows)
    kept: int = 0
    rejected: int = 0
    drops: Counter = field(default_factory=Counter)  # "stage\treason" -> docs


def _normalize_types(table: pa.Table) -> pa.Table:
    """Columns that are all-null in a block come out typed ``null``: store them as strings so every
    shard of a subset has one schema."""
    for i, f in enumerate(table.schema):
        if pa.types.is_null(f.type):
            table = table.set_column(i, f.name, pa.nulls(len(table), pa.string()))
    return table


class _RollingWriter:
    def __init__(self, directory: Path, prefix: str, shard_bytes: int, compression: str) -> None:
        self.directory, self.prefix = directory, prefix
        self.shard_bytes, self.compression = shard_bytes, compression
        self.writer: pq.ParquetWriter | None = None
        self.path: Path | None = None
        self.rows = self.bytes = 0
        self.done: list[tuple[str, int]] = []

    def write(self, table: pa.Table) -> None:
        """Append rows, closing the current shard whenever it reaches the target size (big blocks are
        sliced so shards stay near the target)."""
        if len(table) == 0:
            return
        bytes_per_row = max(1, table.nbytes // len(table))
        start = 0
        while start < len(table):
            room = max(1, (self.shard_bytes - self.bytes) // bytes_per_row)
            self._write(table.slice(start, room))
            start += room

    def _write(self, table: pa.Table) -> None:
        if self.writer is not None and table.schema != self.writer.schema:
            table = self._conform(table)
        if self.writer is None:
            self.path = self.directory / f"{self.prefix}-{len(self.done):04d}.parquet"
            self.writer = pq.ParquetWriter(
                self.path, table.schema,
                compression=None if self.compression == "none" else self.compression,
            )
        self.writer.write_table(table, row_group_size=64 * 1024)
        self.rows += len(table)
        self.bytes += table.nbytes
        if self.bytes >= self.shard_bytes:
            self.close()

    def _conform(self, table: pa.Table) -> pa.Table:
        schema = self.writer.schema
        try:
            cols = [
                table.column(f.name).cast(f.type) if f.name in table.column_names
                else pa.nulls(len(table), f.type)
                for f in schema
            ]
            extra = set(table.column_names) - set(schema.names)
            if not extra:
                return pa.Table.from_arrays(cols, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        self.close()  # a different schema starts a new shard
        return table

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.done.append((str(self.path), self.rows))
        self.writer, self.path, self.rows, self.bytes = None, None, 0, 0


class ShardWriter:
    """Route rows of each block to subsets and write them as rolling shards (one instance per task)."""

    def __init__(self, tmp_dir: Path, task_idx: int, shard_bytes: int, compression: str,
                 write_rejected: bool) -> None:
        self.tmp_dir, self.task_idx = tmp_dir, task_idx
        self.shard_bytes, self.compression, self.write_rejected = shard_bytes, compression, write_rejected
        self.writers: dict[str, _RollingWriter] = {}
        self.out = TaskOutput(task_idx)

    def _writer(self, subset: str) -> _RollingWriter:
        if subset not in self.writers:
            d = self.tmp_dir / subset
            d.mkdir(parents=True, exist_ok=True)
            prefix = f"task-{self.task_idx:06d}-{uuid.uuid4().hex[:8]}"
            self.writers[subset] = _RollingWriter(d, prefix, self.shard_bytes, self.compression)
        return self.writers[subset]

    def add(self, table: pa.Table) -> None:
        table = _normalize_types(table)
        if DROP_REASON in table.column_names:
            dropped_mask = pc.is_valid(table.column(DROP_REASON))
            dropped = table.filter(dropped_mask)
            kept = table.filter(pc.invert(dropped_mask)).drop_columns(
                [c for c in (DROP_REASON, DROP_STAGE) if c in table.column_names]
            )
        else:
            dropped, kept = None, table
        if dropped is not None and len(dropped):
            self.out.rejected += len(dropped)
            stages = dropped.column(DROP_STAGE).to_pylist() if DROP_STAGE in dropped.column_names \
                else [""] * len(dropped)
            reasons = dropped.column(DROP_REASON).to_pylist()
            self.out.drops.update(f"{s}\t{r}" for s, r in zip(stages, reasons))
            if self.write_rejected:
                # rows whose text was cleared were sampled out of rejected/: counted, not written
                sampled = dropped.filter(pc.is_valid(dropped.column("text")))
                self._writer("rejected").write(sampled)
        self.out.kept += len(kept)
        if SPLIT_COLUMN in kept.column_names:
            for name in sorted(set(kept.column(SPLIT_COLUMN).to_pylist()) - {None}):
                part = kept.filter(pc.equal(kept.column(SPLIT_COLUMN), name))
                self._writer(str(name)).write(part)
        else:
            self._writer("data").write(kept)

    def close(self) -> TaskOutput:
        for subset, w in sorted(self.writers.items()):
            w.close()
            self.out.files.extend((subset, p, n) for p, n in w.done)
        return self.out


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def commit_outputs(out_dir: Path, results: list[TaskOutput]) -> list[dict[str, Any]]:
    """Rename temporary files to ``<subset>/part-NNNNN.parquet`` in (task, file) order; return their
    manifest entries (path relative to ``out_dir``, rows, bytes, sha256)."""
    files: list[dict[str, Any]] = []
    counters: Counter = Counter()
    ordered = sorted(
        (subset, r.task_idx, i, path, rows)
        for r in results
        for i, (subset, path, rows) in enumerate(r.files)
    )
    for subset, _task, _i, path, rows in ordered:
        target_dir = out_dir / subset
        target_dir.mkdir(parents=True, exist_ok=True)
        final = target_dir / f"part-{counters[subset]:05d}.parquet"
        counters[subset] += 1
        os.replace(path, final)
        files.append({
            "path": str(final.relative_to(out_dir)), "subset": subset, "rows": rows,
            "bytes": final.stat().st_size, "sha256": sha256_file(final),
        })
    return files


def clear_outputs(out_dir: Path) -> None:
    """Remove a previous run's final outputs (used with ``output.overwrite``)."""
    for sub in ("data", "train", "eval", "rejected", "_tmp"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    for name in ("manifest.json", "stats.json", "report.html", "README.md"):
        (out_dir / name).unlink(missing_ok=True)
