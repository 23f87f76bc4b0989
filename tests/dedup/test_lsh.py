"""LSH parameters (cross-checked with datasketch), band keys and bucket pairs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from datasketch.lsh import _optimal_param

from curator.dedup.lsh import band_keys, bucket_pairs, optimal_bands


@pytest.mark.parametrize("threshold,num_perm,fp,fn", [
    (0.8, 128, 0.5, 0.5), (0.8, 112, 0.5, 0.5), (0.5, 64, 0.5, 0.5), (0.8, 128, 0.05, 0.95),
    (0.9, 256, 0.3, 0.7), (0.7, 128, 0.1, 0.9),
])
def test_optimal_bands_match_datasketch(threshold, num_perm, fp, fn):
    assert optimal_bands(threshold, num_perm, fp, fn) == _optimal_param(threshold, num_perm, fp, fn)


def test_band_keys_agree_exactly_on_equal_bands():
    sig = np.array([[1, 2, 3, 4], [1, 2, 9, 4], [1, 2, 3, 4]], dtype=np.uint32)
    keys = band_keys(sig, bands=2, rows=2, seed=0)
    assert keys[0, 0] == keys[1, 0] == keys[2, 0]
    assert keys[0, 1] == keys[2, 1] != keys[1, 1]
    assert keys[0, 0] != keys[0, 1]  # the band index is part of the key
    assert not np.array_equal(band_keys(sig, 2, 2, seed=1), keys)


def _pairs(t: pa.Table) -> set[tuple[int, int]]:
    return set(zip(t.column("u").to_pylist(), t.column("v").to_pylist(), strict=True))


def test_bucket_pairs_anchor_stars():
    t = pa.table({"bkey": pa.array([7, 7, 7, 7, 3, 3, 5], pa.uint64()),
                  "vid": pa.array([40, 10, 30, 20, 2, 1, 99], pa.int64())})
    assert _pairs(bucket_pairs(t, anchors=1)) == {(10, 20), (10, 30), (10, 40), (1, 2)}
    assert _pairs(bucket_pairs(t, anchors=2)) == {(10, 20), (10, 30), (10, 40), (20, 30), (20, 40), (1, 2)}
    assert bucket_pairs(t.slice(6), anchors=2).num_rows == 0


def test_bucket_pairs_all_singletons():
    t = pa.table({"bkey": pa.array([1, 2, 3], pa.uint64()), "vid": pa.array([5, 6, 7], pa.int64())})
    assert bucket_pairs(t, anchors=2).num_rows == 0
