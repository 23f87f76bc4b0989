"""Connected components of a duplicate graph, distributed over Ray Data (alternating large/small star).

The algorithm is Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014). Each round
is one shuffle of the edge list keyed by a node and one vectorized kernel per block:

- large-star: for each node u with neighbours N(u), let m = min(N(u) + {u}); link every neighbour
  v > u to m;
- small-star: for each node u with smaller neighbours L(u), let m = min(L(u) + {u}); link every node
  of L(u) + {u} to m.

Rounds alternate until the edge set stops changing (checked by a count and an order-free 64-bit
fingerprint); the result is a star per component with its smallest node id at the centre, reached in
O(log^2 n) rounds, and no process ever holds more than one partition of the edges. The same kernels run
on one in-memory table in ``components_local`` (used by tests and small graphs).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa

from curator.dedup.lsh import unique_pairs
from curator.dedup.minhash import mix64

log = logging.getLogger("curator.dedup")


def _grouped(keys: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort by (key, other); return keys, others, group index per row, group start offsets."""
    order = np.lexsort((other, keys))
    keys, other = keys[order], other[order]
    first = np.r_[True, keys[1:] != keys[:-1]] if len(keys) else np.zeros(0, bool)
    group = np.cumsum(first) - 1
    return keys, other, group, np.flatnonzero(first)


def both_directions(table: pa.Table) -> pa.Table:
    """Edge list (u, v) -> (a, b) rows in both directions (input of large-star, keyed by ``a``)."""
    u, v = table.column("u").to_numpy(), table.column("v").to_numpy()
    return pa.table({"a": np.concatenate([u, v]), "b": np.concatenate([v, u])})


def large_star(table: pa.Table) -> pa.Table:
    """Large-star on a block holding every (a, b) row of its ``a`` values. Returns (u, v) with u > v."""
    a, b, group, starts = _grouped(table.column("a").to_numpy(), table.column("b").to_numpy())
    if len(a) == 0:
        return unique_pairs(a, b).rename_columns(["v", "u"]).select(["u", "v"])
    m = np.minimum(b[starts], a[starts])[group]  # b sorted within group: first b is its minimum
    bigger = b > a
    return _canonical(b[bigger], m[bigger])


def small_star(table: pa.Table) -> pa.Table:
    """Small-star on a block holding every edge (u, v), u > v, of its ``u`` values."""
    u, v, group, starts = _grouped(table.column("u").to_numpy(), table.column("v").to_numpy())
    if len(u) == 0:
        return _canonical(u, v)
    m = v[starts][group]  # the smallest lower neighbour (v < u always)
    nodes = np.concatenate([v, u[starts]])
    centre = np.concatenate([m, v[starts]])
    keep = nodes != centre
    return _canonical(nodes[keep], centre[keep])


def _canonical(x: np.ndarray, y: np.ndarray) -> pa.Table:
    """Unique undirected edges as (u, v) with u > v."""
    pairs = unique_pairs(x, y)  # columns u=min, v=max
    return pa.table({"u": pairs.column("v"), "v": pairs.column("u")})


def fingerprint(table: pa.Table) -> pa.Table:
    """Order-free digest of a block's edges: row count and a wrapping sum of mixed (u, v)."""
    u = table.column("u").to_numpy().astype(np.uint64)
    v = table.column("v").to_numpy().astype(np.uint64)
    s = int(np.sum(mix64(mix64(u) ^ v), dtype=np.uint64)) if len(u) else 0
    return pa.table({"n": pa.array([len(u)], pa.int64()), "s": pa.array([s], pa.uint64())})


def labels_from_stars(table: pa.Table) -> pa.Table:
    """(node, root) for every node of converged star edges (u, v = root); roots map to themselves."""
    u, v = table.column("u").to_numpy(), table.column("v").to_numpy()
    roots = np.unique(v)
    return pa.table({"vid": np.concatenate([u, roots]), "comp": np.concatenate([v, roots])})


def components_local(edges: pa.Table, max_rounds: int = 200) -> pa.Table:
    """Connected components of an in-memory edge table (u, v): (vid, comp = smallest vid in component)."""
    cur = _canonical(edges.column("u").to_numpy(), edges.column("v").to_numpy())
    for _ in range(max_rounds):
        nxt = small_star(large_star(both_directions(cur)))
        if nxt.equals(cur):
            return _sorted_labels(labels_from_stars(cur))
        cur = nxt
    raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")


def _sorted_labels(t: pa.Table) -> pa.Table:
    order = np.argsort(t.column("vid").to_numpy(), kind="stable")
    return t.take(pa.array(order))


def components_ray(edges: Any, *, num_partitions: int, max_rounds: int = 200, local_max_edges: int = 0) -> Any:
    """Connected components of a Ray Dataset of edges (u, v): a Dataset of (vid, comp).

    Every node of the graph has a row; a component's root (comp = vid) may have one per block that holds
    edges of its star.

    With at most ``local_max_edges`` edges (16 bytes each) the same kernels run in this process on the
    collected edge list, which saves two shuffles per round on small graphs; above it (or with 0) every
    round is distributed.
    """
    import ray

    from curator.dedup.shuffle import collect, map_partitions_by

    if local_max_edges and edges.count() <= local_max_edges:
        table = collect(edges)
        if table is not None:
            return ray.data.from_arrow(components_local(table.select(["u", "v"]), max_rounds))

    cur = map_partitions_by(
        edges.map_batches(_canonical_block, batch_format="pyarrow"), "u", _canonical_block,
        num_partitions=num_partitions,
    ).materialize()
    last = _digest(cur)
    for rnd in range(max_rounds):
        doubled = cur.map_batches(both_directions, batch_format="pyarrow")
        ls = map_partitions_by(doubled, "a", large_star, num_partitions=num_partitions)
        nxt = map_partitions_by(ls, "u", small_star, num_partitions=num_partitions).materialize()
        digest = _digest(nxt)
        log.info("connected components round %d: %d edges", rnd + 1, digest[0])
        if digest == last:
            return nxt.map_batches(labels_from_stars, batch_format="pyarrow")
        cur, last = nxt, digest
    raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")


def _canonical_block(table: pa.Table) -> pa.Table:
    return _canonical(table.column("u").to_numpy(), table.column("v").to_numpy())


def _digest(ds: Any) -> tuple[int, int]:
    """Fingerprint of a materialized dataset, one small Ray task per block (no Data executor start)."""
    import ray

    remote = ray.remote(num_cpus=0.5)(fingerprint)
    parts = ray.get([remote.remote(ref) for ref in ds.to_arrow_refs()])
    n = sum(int(p.column("n")[0].as_py()) for p in parts)
    s = sum(int(p.column("s")[0].as_py()) for p in parts) % (1 << 64)
    return n, s
