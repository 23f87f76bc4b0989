"""Rolling Parquet shards whose bytes depend on the rows alone.

Row groups and files are cut where the running total of each row's estimated size (the bytes of its
string columns plus the fixed width of the others) crosses the targets, never where a batch happens to
end, so the same rows always give the same files and the same sha256s, whatever the batching or the
scheduling. Each file is written through :meth:`curator.storage.Storage.open_write` (whole or nothing)
and hashed as it is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curator.storage import Storage

ROW_GROUP_BYTES = 32 << 20
ROW_GROUP_ROWS = 100_000


def normalize_types(table: pa.Table) -> pa.Table:
    """Columns that are all-null in a batch come out typed ``null``: store them as strings so every
    shard of a subset has one schema."""
    for i, f in enumerate(table.schema):
        if pa.types.is_null(f.type):
            table = table.set_column(i, f.name, pa.nulls(len(table), pa.string()))
    return table


def row_sizes(table: pa.Table) -> np.ndarray:
    """Estimated bytes of each row: string/binary lengths plus 8 bytes per other column."""
    sizes = np.zeros(table.num_rows, np.int64)
    for col in table.columns:
        t = col.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or \
                pa.types.is_large_binary(t):
            sizes += pc.fill_null(pc.binary_length(col), 0).to_numpy(zero_copy_only=False).astype(np.int64) + 4
        else:
            sizes += 8
    return sizes


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table | None:
    """``table`` in ``schema`` (missing columns null, types cast), or None when it has other columns."""
    if set(table.column_names) - set(schema.names):
        return None
    try:
        cols = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
                for f in schema]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pa.Table.from_arrays(cols, schema=schema)


class ShardWriter:
    """Write one subset's rows as files ``name(0)``, ``name(1)``, ... of about ``shard_bytes`` each."""

    def __init__(self, storage: Storage, subset: str, name: Callable[[int], str], shard_bytes: int,
                 compression: str = "zstd", group_bytes: int = ROW_GROUP_BYTES) -> None:
        self.storage, self.subset, self.name = storage, subset, name
        self.shard_bytes = max(1, int(shard_bytes))
        self.group_bytes = max(1, min(group_bytes, self.shard_bytes))
        self.compression = None if compression == "none" else compression
        self.files: list[dict[str, Any]] = []
        self._pending: list[pa.Table] = []
        self._pending_bytes = 0
        self._pending_rows = 0
        self._schema: pa.Schema | None = None
        self._ctx: Any = None
        self._out: Any = None
        self._pq: pq.ParquetWriter | None = None
        self._file_rows = 0
        self._file_bytes = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = normalize_types(table)
        if self._schema is None:
            self._schema = table.schema
        elif table.schema != self._schema:
            conformed = _conform(table, self._schema)
            if conformed is None:  # other columns: the next file gets the new schema
                self._flush_group()
                self._close_file()
                self._schema = table.schema
            else:
                table = conformed
        sizes = row_sizes(table)
        start = 0
        while start < table.num_rows:
            room_bytes = min(self.group_bytes - self._pending_bytes, self.shard_bytes - self._file_bytes -
                             self._pending_bytes)
            room_rows = ROW_GROUP_ROWS - self._pending_rows
            cum = np.cumsum(sizes[start:])
            # rows up to and including the one that reaches the byte target, at most room_rows
            take = int(np.searchsorted(cum, max(room_bytes, 1), side="left")) + 1
            take = min(take, room_rows, table.num_rows - start)
            piece = table.slice(start, take)
            self._pending.append(piece)
            self._pending_rows += take
            self._pending_bytes += int(cum[take - 1])
            start += take
            full_group = self._pending_bytes >= self.group_bytes or self._pending_rows >= ROW_GROUP_ROWS
            full_file = self._file_bytes + self._pending_bytes >= self.shard_bytes
            if full_group or full_file:
                self._flush_group()
            if full_file:
                self._close_file()

    def _flush_group(self) -> None:
        if not self._pending:
            return
        group = pa.concat_tables(self._pending) if len(self._pending) > 1 else self._pending[0]
        if self._pq is None:
            self._ctx = self.storage.open_write(self.name(len(self.files)))
            self._out = self._ctx.__enter__()
            self._pq = pq.ParquetWriter(self._out, group.schema, compression=self.compression)
        self._pq.write_table(group, row_group_size=group.num_rows)
        self._file_rows += group.num_rows
        self._file_bytes += self._pending_bytes
        self._pending, self._pending_bytes, self._pending_rows = [], 0, 0

    def _close_file(self) -> None:
        if self._pq is None:
            return
        self._pq.close()
        self._ctx.__exit__(None, None, None)
        rel = self.name(len(self.files))
        self.files.append({"path": rel, "subset": self.subset, "rows": self._file_rows,
                           "bytes": self._out.nbytes, "sha256": self._out.sha256})
        self._pq, self._ctx, self._out = None, None, None
        self._file_rows = self._file_bytes = 0

    def close(self) -> list[dict[str, Any]]:
        """Finish the last file; the manifest entries of every file written."""
        self._flush_group()
        self._close_file()
        return self.files

    def abort(self) -> None:
        """Throw away the file being written (it never appears)."""
        if self._pq is not None:
            try:
                self._pq.close()
            finally:
                self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)
            self._pq, self._ctx, self._out = None, None, None
        self._pending = []
