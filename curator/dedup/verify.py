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


def _row_keys(values: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``i << 32 | value`` for every value of the set of ``rows[i]``: one ascending run (sets are sorted)."""
    sizes = offsets[rows + 1] - offsets[rows]
    starts = np.cumsum(sizes) - sizes
    gather = np.repeat(offsets[rows] - starts, sizes) + np.arange(int(sizes.sum()))
    return (np.repeat(np.arange(len(rows), dtype=np.uint64), sizes) << np.uint64(32)) | values[gather]


def jaccard_rows(a: tuple[np.ndarray, np.ndarray], a_rows: np.ndarray, b: tuple[np.ndarray, np.ndarray],
                 b_rows: np.ndarray, chunk: int = _CHUNK_VALUES) -> np.ndarray:
    """Exact Jaccard of the sets ``a[a_rows[i]]`` and ``b[b_rows[i]]`` (``list_parts`` of sorted unique sets).

    Pairs are processed in chunks of about ``chunk`` set values. In a chunk every value becomes the key
    ``pair << 32 | value``; each side is then one ascending run, so a stable sort (timsort) merges the two
    in linear time, and a value in both sets of a pair shows up as two equal neighbours. No list column is
    copied: values are gathered straight from the arrays.
    """
    (av, ao), (bv, bo) = a, b
    a_rows, b_rows = np.asarray(a_rows, np.int64), np.asarray(b_rows, np.int64)
    asz, bsz = ao[a_rows + 1] - ao[a_rows], bo[b_rows + 1] - bo[b_rows]
    n = len(a_rows)
    inter = np.zeros(n, np.int64)
    ends = np.cumsum(asz + bsz)
    lo = 0
    while lo < n:
        hi = min(n, max(lo + 1, int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + chunk))))
        key = np.sort(np.concatenate([_row_keys(av, ao, a_rows[lo:hi]), _row_keys(bv, bo, b_rows[lo:hi])]),
                      kind="stable")
        both = key[1:][key[1:] == key[:-1]]
        inter[lo:hi] = np.bincount((both >> np.uint64(32)).astype(np.int64), minlength=hi - lo)
        lo = hi
    union = asz + bsz - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def jaccard_many(a: pa.Array, b: pa.Array, chunk: int = _CHUNK_VALUES) -> np.ndarray:
    """Row-wise exact Jaccard of two equally long list<uint32> columns holding sorted unique sets."""
    rows = np.arange(len(a))
    return jaccard_rows(list_parts(a), rows, list_parts(b), rows, chunk)


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


def _match(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(pair row, document row) index pairs of a block: each pair row with the document row of its key."""
    side = table.column("side").to_numpy()
    keys = table.column("k").to_numpy()
    docs = np.flatnonzero(side == SIDE_DOC)
    pairs = np.flatnonzero(side == SIDE_PAIR)
    order = np.argsort(keys[docs], kind="stable")
    pos, found = lookup(keys[docs][order], keys[pairs])
    return pairs[found], docs[order[pos[found]]]


def attach_first(table: pa.Table) -> pa.Table:
    """Block kernel: give each pair (k=u, other=v) u's shingles; re-key the row by v."""
    pairs, docs = _match(table)
    idx = pa.array(pairs)
    sh_u = table.column("sh").combine_chunks().take(pa.array(docs))
    return pa.table([table.column("other").take(idx), table.column("k").take(idx),
                     pa.array(np.zeros(len(pairs), np.int8)), sh_u], schema=JOIN_SCHEMA)


def verify_second(table: pa.Table, threshold: float) -> pa.Table:
    """Block kernel: rows (k=v, other=u, sh=shingles of u) + v's document row -> edges with J >= t."""
    pairs, docs = _match(table)
    sh = list_parts(table.column("sh"))
    ok = pairs[jaccard_rows(sh, pairs, sh, docs) >= threshold]
    u = table.column("other").to_numpy()[ok]
    v = table.column("k").to_numpy()[ok]
    return pa.table({"u": pa.array(u, pa.int64()), "v": pa.array(v, pa.int64())})


def verify_blocks(a: pa.Table, b: pa.Table, u: np.ndarray, v: np.ndarray, threshold: float) -> np.ndarray:
    """Mask of the pairs (u[i], v[i]) with exact Jaccard >= threshold, u's document in block ``a`` and v's in
    block ``b`` (``_vid``, ``_sh`` columns; ``b`` may be ``a``). Every vid must be in its block."""
    ia, ib = _rows_of(a, u), _rows_of(b, v)
    return jaccard_rows(list_parts(a.column("_sh")), ia, list_parts(b.column("_sh")), ib) >= threshold


def _rows_of(block: pa.Table, vids: np.ndarray) -> np.ndarray:
    keys = block.column("_vid").to_numpy()
    order = np.argsort(keys, kind="stable")
    pos, found = lookup(keys[order], vids)
    if not found.all():
        raise ValueError("a pair names a document that is not in its block")
    return order[pos]
