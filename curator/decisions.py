"""What a global stage decided, kept apart from the documents: rows of ``_rowkey`` + the stage's columns.

A global stage (dedup, split, mix) runs on Ray Data over the live rows of a phase. Its result is cut
down to the key column ``_rowkey``, ``drop_reason`` and the columns it declares (``Stage.columns()``),
sorted by key (``id`` breaks ties between the copies ``mix`` makes) and written as key-range files
under ``_curator/global/`` with an index of their key ranges. The next phase's tasks then read only the
decision rows of their own unit and join them onto the unit's rows by key. The documents' text is never
shuffled for that, and a crash after a global stage resumes from its decisions.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curator.dedup.lookup import lookup
from curator.plan import KEY_CHARS, StagePlan
from curator.schema import DROP_REASON, DROP_STAGE
from curator.storage import Storage
from curator.table import set_column, split_live, text_chars

ROWKEY = "_rowkey"
ROW_BITS = 32


class DecisionError(RuntimeError):
    """A global stage's result does not match its input rows (lost rows, undeclared columns)."""


def index_path(key: str) -> str:
    return f"_curator/global/{key[:KEY_CHARS]}.json"


def decision_columns(stage: Any) -> list[str]:
    return [c.name for c in stage.columns()]


def project(table: pa.Table, *, columns: list[str], input_columns: list[str], stage: str) -> pa.Table:
    """A stage's output rows cut down to the decision columns; undeclared new columns are an error."""
    if ROWKEY not in table.column_names:
        raise DecisionError(f"global stage {stage} lost the {ROWKEY} column")
    extra = [c for c in table.column_names
             if c not in input_columns and c not in columns and c != DROP_REASON and not c.startswith("_")]
    if extra:
        raise DecisionError(f"global stage {stage} wrote undeclared column(s) {extra}; declare them in its "
                            "`writes` (or `columns()`)")
    keep = [ROWKEY] + [c for c in columns if c in table.column_names]
    if DROP_REASON in table.column_names:
        keep.append(DROP_REASON)
    out = table.select(keep)
    if DROP_REASON not in out.column_names:
        out = out.append_column(DROP_REASON, pa.nulls(out.num_rows, pa.string()))
    return out


def write_block(table: pa.Table, *, url: str, folder: str) -> pa.Table:
    """Write one sorted block of decision rows; return its (path, min, max, rows) row."""
    if table.num_rows == 0:
        return pa.table({"path": pa.array([], pa.string()), "min": pa.array([], pa.int64()),
                         "max": pa.array([], pa.int64()), "rows": pa.array([], pa.int64())})
    storage = Storage(url)
    rel = f"{folder}/part-{uuid.uuid4().hex[:12]}.parquet"
    keys = table.column(ROWKEY)
    with storage.open_write(rel) as f:
        pq.write_table(table, f, compression="zstd")
    return pa.table({"path": [rel], "min": [pc.min(keys).as_py()], "max": [pc.max(keys).as_py()],
                     "rows": [table.num_rows]})


@lru_cache(maxsize=8)
def _read_file(url: str, rel: str) -> pa.Table:
    with Storage(url).open_read(rel) as f:
        return pq.read_table(f)


def load_range(storage: Storage, index: dict[str, Any], lo: int, hi: int) -> pa.Table | None:
    """Decision rows with lo <= _rowkey <= hi, sorted by key; None when the stage ran on no rows."""
    parts = []
    for f in index["files"]:
        if f["max"] < lo or f["min"] > hi:
            continue
        t = _read_file(storage.url, f["path"])
        keys = t.column(ROWKEY).to_numpy()
        start, stop = np.searchsorted(keys, lo, "left"), np.searchsorted(keys, hi, "right")
        if stop > start:
            parts.append(t.slice(int(start), int(stop - start)))
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]


def load_decisions(storage: Storage, index: dict[str, Any], unit: int) -> pa.Table | None:
    """The decision rows of one unit."""
    return load_range(storage, index, unit << ROW_BITS, ((unit + 1) << ROW_BITS) - 1)


def join(live: pa.Table, dec: pa.Table | None, stage: StagePlan, keep_if_null: set[str]) -> pa.Table:
    """``live`` (sorted by unique ``_rowkey``) with the stage's decisions applied: each decision row takes
    its document's row and sets the decided columns (a row repeated by ``mix`` comes out once per copy)."""
    if live.num_rows == 0:
        return live
    rk = live.column(ROWKEY).to_numpy()
    if dec is None:
        raise DecisionError(f"global stage {stage.name} returned no rows for {live.num_rows} documents")
    dk = dec.column(ROWKEY).to_numpy()
    start, stop = np.searchsorted(dk, rk[0], "left"), np.searchsorted(dk, rk[-1], "right")
    dec = dec.slice(int(start), int(stop - start))
    dk = dk[start:stop]
    pos, found = lookup(rk, dk)
    if not found.all():
        raise DecisionError(f"global stage {stage.name} returned rows for unknown documents")
    if len(np.unique(pos)) != len(rk):
        raise DecisionError(f"global stage {stage.name} returned no row for {len(rk) - len(np.unique(pos))} "
                            "documents (a global stage must return every input row)")
    out = live.take(pa.array(pos))
    for name in dec.column_names:
        if name in (ROWKEY, DROP_REASON):
            continue
        values = dec.column(name)
        if name in keep_if_null and name in out.column_names:
            values = pc.coalesce(values, out.column(name).cast(values.type))
        out = set_column(out, name, values)
    return set_column(out, DROP_REASON, dec.column(DROP_REASON).cast(pa.string()))


def apply_decisions(live: pa.Table, dec: pa.Table | None, stage: StagePlan, counts: Any
                    ) -> tuple[pa.Table, pa.Table | None]:
    """Apply a stage's decisions to a live batch, count them as the stage's, and split off its drops."""
    if live.num_rows == 0:
        return live, None
    keep_if_null = {c.name for c in stage.instance().columns() if c.keep_if_null}
    counts.docs_in += live.num_rows
    counts.chars_in += text_chars(live)
    out = join(live, dec, stage, keep_if_null)
    alive, dead = split_live(out)
    counts.docs_out += alive.num_rows
    counts.chars_out += text_chars(alive)
    if dead.num_rows:
        counts.drops.update(dead.column(DROP_REASON).to_pylist())
        dead = set_column(dead, DROP_STAGE, pa.array([stage.name] * dead.num_rows, pa.string()))
        return alive, dead
    return alive, None


def apply_for_ray(table: pa.Table, *, url: str, pending: list[tuple[StagePlan, dict[str, Any]]]) -> pa.Table:
    """Ray Data map: a block of work rows with earlier global stages' decisions applied, live rows only."""
    if table.num_rows == 0 or not pending:
        return table
    table = table.take(pc.sort_indices(table, [(ROWKEY, "ascending")]))
    storage = Storage(url)
    keys = table.column(ROWKEY).to_numpy()
    for stage, index in pending:
        if table.num_rows == 0:
            break
        dec = load_range(storage, index, int(keys.min()), int(keys.max()))
        if dec is not None:  # a block may hold rows of several units or parts of one: its key range, others'
            dec = dec.filter(pa.array(lookup(keys, dec.column(ROWKEY).to_numpy())[1]))
        keep_if_null = {c.name for c in stage.instance().columns() if c.keep_if_null}
        table, _ = split_live(join(table, dec, stage, keep_if_null))
        keys = table.column(ROWKEY).to_numpy()
    return table
