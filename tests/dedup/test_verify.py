"""Exact Jaccard of candidate pairs and the keyed joins that bring both shingle sets to a pair."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.dedup.verify import SHINGLES, attach_first, doc_rows, jaccard_many, pair_rows, verify_second

sets = st.lists(st.sets(st.integers(0, 40)), min_size=0, max_size=12)


def _col(rows: list[set[int]]) -> pa.Array:
    return pa.array([sorted(r) for r in rows], SHINGLES)


@settings(max_examples=200, deadline=None)
@given(st.data(), st.sampled_from([1, 3, 7, 1 << 19]))
def test_jaccard_many_equals_python_sets(data, chunk):
    a = data.draw(sets)
    b = data.draw(st.lists(st.sets(st.integers(0, 40)), min_size=len(a), max_size=len(a)))
    got = jaccard_many(_col(a), _col(b), chunk=chunk)
    want = [len(x & y) / len(x | y) if x | y else 1.0 for x, y in zip(a, b, strict=True)]
    assert got.tolist() == want


def test_jaccard_many_on_sliced_columns():
    col = _col([{1, 2, 3}, {9}, {1, 2}, {2, 3, 4, 5}])
    assert jaccard_many(col.slice(2, 2), col.slice(0, 2)).tolist() == [2 / 3, 0.0]


def test_two_joins_verify_each_pair_exactly():
    docs = pa.table({"_vid": pa.array([10, 20, 30, 40], pa.int64()),
                     "_sh": _col([set(range(10)), set(range(1, 10)), set(range(5, 15)), set()])})
    pairs = pa.table({"u": pa.array([10, 10, 20, 10], pa.int64()), "v": pa.array([20, 30, 30, 40], pa.int64())})
    dr = doc_rows(docs)  # the empty set of 40 is left out: a pair with it never verifies
    first = attach_first(pa.concat_tables([pair_rows(pairs), dr]))
    edges = verify_second(pa.concat_tables([first, dr]), threshold=0.8)
    assert list(zip(edges.column("u").to_pylist(), edges.column("v").to_pylist(), strict=True)) == [(10, 20)]
    loose = verify_second(pa.concat_tables([first, dr]), threshold=1 / 3)
    assert sorted(zip(loose.column("u").to_pylist(), loose.column("v").to_pylist(), strict=True)) == [
        (10, 20), (10, 30), (20, 30)]
