"""Connected components (large/small star) on crafted and random graphs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.dedup.components import components_local


def _cc(edges: list[tuple[int, int]]) -> dict[int, int]:
    t = pa.table({"u": pa.array([a for a, _ in edges], pa.int64()),
                  "v": pa.array([b for _, b in edges], pa.int64())})
    out = components_local(t)
    return dict(zip(out.column("vid").to_pylist(), out.column("comp").to_pylist(), strict=True))


def _reference(edges: list[tuple[int, int]]) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


def test_long_chain_in_any_order():
    chain = [(i, i + 1) for i in range(200)]
    assert _cc(chain) == {i: 0 for i in range(201)}
    rng = np.random.default_rng(0)
    shuffled = [chain[i] if rng.random() < 0.5 else chain[i][::-1] for i in rng.permutation(200)]
    assert _cc(shuffled) == {i: 0 for i in range(201)}


def test_star_disjoint_and_duplicate_edges():
    edges = [(50, 7), (50, 8), (50, 9), (50, 3), (100, 101), (101, 100), (101, 102), (5, 6), (6, 5)]
    assert _cc(edges) == {3: 3, 7: 3, 8: 3, 9: 3, 50: 3, 100: 100, 101: 100, 102: 100, 5: 5, 6: 5}


def test_negative_vids():
    assert _cc([(-5, 10), (10, 3), (-9, -8)]) == {-5: -5, 10: -5, 3: -5, -9: -9, -8: -9}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)).filter(lambda e: e[0] != e[1]),
                min_size=1, max_size=120))
def test_matches_union_find(edges):
    assert _cc(edges) == _reference(edges)


@pytest.mark.ray
def test_distributed_rounds_match_union_find(ray_cluster):
    """Every round on Ray (no driver shortcut), blocks split so edges of one component sit apart."""
    import ray

    from curator.dedup.components import components_ray

    rng = np.random.default_rng(7)
    chain = [(i, i + 1) for i in range(1000, 1060)]
    star = [(2000, 2001 + k) for k in range(30)]
    random_edges = [tuple(e) for e in rng.integers(3000, 3150, (120, 2)).tolist() if e[0] != e[1]]
    edges = chain + star + random_edges + [(-5, 10), (10, 3)]
    order = rng.permutation(len(edges))
    t = pa.table({"u": pa.array([edges[i][0] for i in order], pa.int64()),
                  "v": pa.array([edges[i][1] for i in order], pa.int64())})
    ds = ray.data.from_arrow([t.slice(k, 25) for k in range(0, t.num_rows, 25)])
    out = pa.concat_tables(ray.get(components_ray(ds, num_partitions=3, local_max_edges=0).to_arrow_refs()))
    pairs = set(zip(out.column("vid").to_pylist(), out.column("comp").to_pylist(), strict=True))
    assert len({v for v, _ in pairs}) == len(pairs)  # a root may be listed by several blocks, always alike
    assert dict(pairs) == _reference(edges)
