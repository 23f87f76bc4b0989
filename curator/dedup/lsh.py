"""LSH banding: parameter choice, band keys of signatures, candidate pairs per bucket.

``optimal_bands`` picks bands x rows (b * r <= num_perm) minimizing the weighted areas under the
S-curve ``1 - (1 - s**r)**b`` that fall on the wrong side of the threshold (false-positive area below
it, false-negative area above it), the criterion datasketch's ``MinHashLSH`` uses.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curator.dedup.minhash import mix64

_GRID = np.linspace(0.0, 1.0, 2001)


def _collision_probability(s: np.ndarray, bands: int, rows: int) -> np.ndarray:
    return 1.0 - (1.0 - s**rows) ** bands


def _area(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0) if len(x) > 1 else 0.0


def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
                  ) -> tuple[int, int]:
    """(bands, rows) minimizing ``fp_weight * FP area + fn_weight * FN area`` at ``threshold``."""
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be between 0 and 1")
    below = _GRID[_GRID <= threshold]
    above = _GRID[_GRID >= threshold]
    best, best_cost = (1, 1), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = _area(_collision_probability(below, bands, rows), below)
            fn = _area(1.0 - _collision_probability(above, bands, rows), above)
            cost = fp_weight * fp + fn_weight * fn
            if cost < best_cost - 1e-12:
                best, best_cost = (bands, rows), cost
    return best


def band_keys(sig: np.ndarray, bands: int, rows: int, seed: int) -> np.ndarray:
    """(docs, bands) uint64 keys: a hash of each band's ``rows`` signature values and the band index.

    Two documents share a key in band i exactly when their signatures agree on that band (up to 2**-64
    collisions); the band index is mixed in so one key column can hold every band.
    """
    n = sig.shape[0]
    keys = np.empty((n, bands), np.uint64)
    base = mix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) + np.arange(1, bands + 1, dtype=np.uint64))
    for i in range(bands):
        h = np.full(n, base[i], np.uint64)
        for j in range(i * rows, (i + 1) * rows):
            h = mix64(h ^ sig[:, j].astype(np.uint64))
        keys[:, i] = h
    return keys


def bucket_pairs(table: pa.Table, anchors: int) -> pa.Table:
    """Candidate pairs from a block holding whole buckets: columns ``bkey`` (uint64), ``vid`` (int64).

    In every bucket of two or more documents, the ``anchors`` smallest vids are each paired with every
    larger member (all pairs when the bucket has at most ``anchors + 1`` members), so a bucket of k
    documents yields at most ``anchors * k`` pairs. Returns unique ``(u, v)`` int64 pairs with u < v.
    """
    keys = table.column("bkey").to_numpy()
    vids = table.column("vid").to_numpy()
    order = np.lexsort((vids, keys))
    keys, vids = keys[order], vids[order]
    if len(keys) < 2:
        return _pairs_table(np.zeros(0, np.int64), np.zeros(0, np.int64))
    first = np.r_[True, keys[1:] != keys[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    pos = np.arange(len(keys)) - starts[group]
    us, vs = [], []
    for j in range(anchors):
        has = pos > j
        if not has.any():
            break
        us.append(vids[starts[group[has]] + j])
        vs.append(vids[has])
    if not us:
        return _pairs_table(np.zeros(0, np.int64), np.zeros(0, np.int64))
    u, v = np.concatenate(us), np.concatenate(vs)
    keep = u != v
    return unique_pairs(u[keep], v[keep])


def unique_pairs(u: np.ndarray, v: np.ndarray) -> pa.Table:
    """Sorted unique (min, max) pairs."""
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    order = np.lexsort((hi, lo))
    lo, hi = lo[order], hi[order]
    if len(lo):
        keep = np.r_[True, (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])]
        lo, hi = lo[keep], hi[keep]
    return _pairs_table(lo, hi)


def _pairs_table(u: np.ndarray, v: np.ndarray) -> pa.Table:
    return pa.table({"u": pa.array(u, pa.int64()), "v": pa.array(v, pa.int64())})
