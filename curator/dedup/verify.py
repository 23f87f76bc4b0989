"""Exact Jaccard of candidate pairs and the co-partitioned joins that bring shingle sets to them.

Shingle sets are ``list<uint32>`` columns, which Arrow's hash join does not carry, so the join is done
here: pair rows and document rows share one schema, are unioned, hash-partitioned on the join key, and
each block matches its rows with array operations.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curator.dedup.lookup import lookup

SIDE_PAIR, SIDE_DOC = 0, 1
SHINGLES = pa.list_(pa.uint32())
_CHUNK_VALUES = 1 << 19  # set values per jaccard_many chunk: temporaries of a few MB
JOIN_SCHEMA = pa.schema([("k", pa.int64()), ("other", pa.int64()), ("side", pa.int8()), ("sh", SHINGLES)])


def list_parts(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(flat values, int64 offsets) of a list column; null lists count as empty."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    arr = pc.fill_null(arr, pa.scalar([], arr.type)) if arr.null_count else arr
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.values.to_numpy(zero_copy_only=False)
    return values, offsets


def _row_keys(values: np.ndarray, offsets: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """(row - lo) << 32 | value for the sets of rows lo..hi: one ascending run when each set is sorted."""
    rows = np.repeat(np.arange(hi - lo, dtype=np.uint64), np.diff(offsets[lo: hi + 1]))
    return (rows << np.uint64(32)) | values[offsets[lo]: offsets[hi]]


def jaccard_many(a: pa.Array, b: pa.Array, chunk: int = _CHUNK_VALUES) -> np.ndarray:
    """Row-wise exact Jaccard of two list<uint32> columns holding sorted unique sets, vectorized.

    Rows are processed in chunks of about ``chunk`` set values. In a chunk every value becomes the key
    ``row << 32 | value``; each side is then one ascending run, so a stable sort (timsort) merges the two
    in linear time, and a value in both sets of a row shows up as two equal neighbours.
    """
    av, ao = list_parts(a)
    bv, bo = list_parts(b)
    n = len(ao) - 1
    asz, bsz = np.diff(ao), np.diff(bo)
    inter = np.zeros(n, np.int64)
    ends = np.cumsum(asz + bsz)
    lo = 0
    while lo < n:
        hi = min(n, max(lo + 1, int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + chunk))))
        key = np.sort(np.concatenate([_row_keys(av, ao, lo, hi), _row_keys(bv, bo, lo, hi)]), kind="stable")
        both = key[1:][key[1:] == key[:-1]]
        inter[lo:hi] = np.bincount((both >> np.uint64(32)).astype(np.int64), minlength=hi - lo)
        lo = hi
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
    order = np.argsort(keys[docs], kind="stable")
    pos, found = lookup(keys[docs][order], keys[pairs])
    pairs = pairs[found]
    doc_idx = docs[order[pos[found]]]
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
