"""Exact Jaccard of candidate pairs and the co-partitioned joins that bring shingle sets to them.

Shingle sets are ``list<uint32>`` columns, which Arrow's hash join does not carry, so the join is done
here: pair rows and document rows share one schema, are unioned, hash-partitioned on the join key, and
each block matches its rows with array operations.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIDE_PAIR, SIDE_DOC = 0, 1
SHINGLES = pa.list_(pa.uint32())
JOIN_SCHEMA = pa.schema([("k", pa.int64()), ("other", pa.int64()), ("side", pa.int8()), ("sh", SHINGLES)])


def list_parts(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(flat values, int64 offsets) of a list column; null lists count as empty."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    arr = pc.fill_null(arr, pa.scalar([], arr.type)) if arr.null_count else arr
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.values.to_numpy(zero_copy_only=False)
    return values, offsets


def jaccard_many(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Row-wise exact Jaccard of two list<uint32> columns holding sorted unique sets, vectorized."""
    av, ao = list_parts(a)
    bv, bo = list_parts(b)
    n = len(ao) - 1
    if n == 0:
        return np.zeros(0, np.float64)
    asz, bsz = np.diff(ao), np.diff(bo)
    row_ids = np.arange(n, dtype=np.uint64)
    rows = np.concatenate([np.repeat(row_ids, asz), np.repeat(row_ids, bsz)])
    vals = np.concatenate([av[ao[0]: ao[-1]], bv[bo[0]: bo[-1]]]).astype(np.uint64)
    key = np.sort((rows << np.uint64(32)) | vals)
    dup = key[1:] == key[:-1]  # a value present in both sets of a row appears twice in a row
    inter = np.bincount((key[1:][dup] >> np.uint64(32)).astype(np.int64), minlength=n)[:n]
    union = asz + bsz - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def pair_rows(pairs: pa.Table) -> pa.Table:
    """Pairs (u, v) as join rows keyed by u."""
    n = pairs.num_rows
    return pa.table([pairs.column("u"), pairs.column("v"), pa.array(np.zeros(n, np.int8)),
                     pa.nulls(n, SHINGLES)], schema=JOIN_SCHEMA)


def doc_rows(docs: pa.Table) -> pa.Table:
    """Documents (_vid, _sh) as join rows keyed by vid (documents without shingles are left out)."""
    docs = docs.filter(pc.greater(pc.list_value_length(docs.column("_sh")), 0))
    n = docs.num_rows
    return pa.table([docs.column("_vid"), pa.array(np.full(n, -1, np.int64)),
                     pa.array(np.ones(n, np.int8)), docs.column("_sh")], schema=JOIN_SCHEMA)


def _match(table: pa.Table) -> tuple[pa.Table, pa.Array]:
    """Pair rows of a block that have a document row for their key, and that document's shingles."""
    side = table.column("side").to_numpy()
    keys = table.column("k").to_numpy()
    docs = np.flatnonzero(side == SIDE_DOC)
    pairs = np.flatnonzero(side == SIDE_PAIR)
    doc_keys = keys[docs]
    order = np.argsort(doc_keys, kind="stable")
    sorted_keys = doc_keys[order]
    pos = np.searchsorted(sorted_keys, keys[pairs])
    pos_c = np.minimum(pos, max(len(sorted_keys) - 1, 0))
    found = (pos < len(sorted_keys)) & (sorted_keys[pos_c] == keys[pairs]) if len(sorted_keys) else \
        np.zeros(len(pairs), bool)
    pairs = pairs[found]
    doc_idx = docs[order[pos_c[found]]]
    sh = table.column("sh").combine_chunks()
    return table.take(pa.array(pairs)), sh.take(pa.array(doc_idx))


def attach_first(table: pa.Table) -> pa.Table:
    """Block kernel: give each pair (k=u, other=v) u's shingles; re-key the row by v."""
    pairs, sh_u = _match(table)
    n = pairs.num_rows
    return pa.table([pairs.column("other"), pairs.column("k"), pa.array(np.zeros(n, np.int8)), sh_u],
                    schema=JOIN_SCHEMA)


def verify_second(table: pa.Table, threshold: float) -> pa.Table:
    """Block kernel: rows (k=v, other=u, sh=shingles of u) + v's document row -> edges with J >= t."""
    pairs, sh_v = _match(table)
    j = jaccard_many(pairs.column("sh").combine_chunks(), sh_v)
    ok = j >= threshold
    u = pairs.column("other").to_numpy()[ok]
    v = pairs.column("k").to_numpy()[ok]
    return pa.table({"u": pa.array(u, pa.int64()), "v": pa.array(v, pa.int64())})
