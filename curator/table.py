"""Arrow table helpers shared by stages, dedup kernels and the executor (no Ray, no stage classes)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curator.schema import DROP_REASON, DROP_STAGE

MANAGED = (DROP_REASON, DROP_STAGE)


def set_column(table: pa.Table, name: str, values: Any, type: pa.DataType | None = None) -> pa.Table:
    """Add or replace a column."""
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type=type)
    idx = table.schema.get_field_index(name)
    if idx >= 0:
        return table.set_column(idx, name, arr)
    return table.append_column(name, arr)


def set_drops(table: pa.Table, reasons: pa.Array | list[str | None]) -> pa.Table:
    """Return ``table`` with ``drop_reason`` set to ``reasons`` where the table has none yet.

    ``reasons`` holds one entry per row: a reason string to drop the row, or None to keep it. A reason
    already present (from earlier in the same stage) wins, so the first failing rule is recorded.
    """
    reasons = reasons if isinstance(reasons, (pa.Array, pa.ChunkedArray)) else pa.array(reasons, type=pa.string())
    if reasons.type != pa.string():
        reasons = reasons.cast(pa.string())
    if DROP_REASON in table.column_names:
        merged = pc.coalesce(table.column(DROP_REASON), reasons)
        return table.set_column(table.schema.get_field_index(DROP_REASON), DROP_REASON, merged)
    return table.append_column(pa.field(DROP_REASON, pa.string()), reasons)


def split_live(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(rows without a drop reason, without the managed columns; rows with one)."""
    if DROP_REASON not in table.column_names:
        return table, table.slice(0, 0)
    dead_mask = pc.is_valid(table.column(DROP_REASON))
    live = table.filter(pc.invert(dead_mask)).drop_columns([c for c in MANAGED if c in table.column_names])
    return live, table.filter(dead_mask)


def text_chars(table: pa.Table) -> int:
    """Characters of the ``text`` column (0 without one)."""
    if "text" not in table.column_names or table.num_rows == 0:
        return 0
    return int(pc.sum(pc.utf8_length(table.column("text"))).as_py() or 0)


def concat(tables: list[pa.Table]) -> pa.Table | None:
    """Concatenate tables whose schemas may differ in optional columns (missing ones become null)."""
    tables = [t for t in tables if t is not None and t.num_rows]
    if not tables:
        return None
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")
