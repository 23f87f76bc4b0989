"""The Arrow document schema shared by every reader, stage and writer (see DESIGN.md)."""

from __future__ import annotations

import hashlib

import pyarrow as pa

CORE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string()),
        pa.field("source", pa.string()),
        pa.field("url", pa.string()),
        pa.field("meta", pa.string()),  # JSON object, the source's own metadata
    ]
)
CORE_COLUMNS = tuple(CORE_SCHEMA.names)

# Columns the executor manages around stages.
DROP_REASON = "drop_reason"  # null while a document is kept
DROP_STAGE = "drop_stage"  # name of the stage that dropped it


def make_id(source_key: str, record_key: str | int) -> str:
    """Stable document id from where it came from (file or URL) and its record key.

    Deterministic across runs and machines: a 16-byte blake2b hex digest.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(source_key.encode("utf-8", "surrogatepass"))
    h.update(b"\x00")
    h.update(str(record_key).encode("utf-8"))
    return h.hexdigest()


def core_table(rows: dict[str, list]) -> pa.Table:
    """Build a table in the core schema from column lists (missing optional columns are null)."""
    n = len(rows["id"])
    arrays = [pa.array(rows.get(f.name, [None] * n), type=f.type) for f in CORE_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=CORE_SCHEMA)


def empty_core_table() -> pa.Table:
    return CORE_SCHEMA.empty_table()
