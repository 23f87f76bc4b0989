"""Vectorized lookup of int64 keys in a sorted key array (the join primitive of the dedup kernels)."""

from __future__ import annotations

import numpy as np


def lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position in ``sorted_keys``, found) for every query; positions of missing queries are arbitrary."""
    if len(sorted_keys) == 0:
        return np.zeros(len(queries), np.int64), np.zeros(len(queries), bool)
    pos = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return pos, sorted_keys[pos] == queries
