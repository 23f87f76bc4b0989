"""Near-duplicate groups for the split, so that no cluster of near-copies straddles train and eval.

A document's split key is normally its ``dup_cluster`` (set by a dedup stage), else ``mix_of``, else its
``id`` (``curator.stages.split``). Dedup only clusters what it removes, and documents it did not catch,
or a corpus split without dedup, would still put near-copies on both sides. So the split groups the
documents itself:

1. every document's word n-gram MinHash signature is cut into LSH bands tuned to a *lower* similarity
   than dedup's (``threshold``, default 0.6: a pair at Jaccard 0.8 becomes a candidate with probability
   1 - 3e-6, one at 0.5 with 0.79), and documents sharing a band bucket are linked. There is no
   verification step: grouping too much costs nothing but balance, grouping too little is the leak;
2. documents are also linked to their ``dup_cluster`` and ``mix_of`` (the kept document of a removed
   near-duplicate, the original of an up-sampled copy), so dedup's clusters, including the pairs its
   verification rejected just below its threshold (they share buckets here), join the same group;
3. connected components of those links (``curator.dedup.components``) are the groups; every member of a
   group gets the smallest split key among its members, so a singleton keeps its own key and the
   split's documented rule is unchanged for it.

Small graphs (at most ``local_max_pairs`` links) are resolved in the driver and broadcast; larger ones by
keyed shuffles on Ray, like fuzzy dedup's distributed regime. A table without ``text`` is not grouped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curator.dedup import components, lsh
from curator.dedup.fuzzy import vids
from curator.dedup.lookup import lookup
from curator.dedup.minhash import shingle_sets, signatures
from curator.table import set_column

GROUP_KEY = "_split_group_key"
LINKS = ("dup_cluster", "mix_of")
LOCAL_MAX_DOCS = 200_000  # documents up to which the grouping runs in the driver


def band_shape(threshold: float, num_perm: int) -> tuple[int, int]:
    """Bands x rows that favour recall heavily (there is no verification to remove false positives)."""
    return lsh.optimal_bands(threshold, num_perm, 0.05, 0.95)


def keyed_rows(table: pa.Table, *, keys: pa.Array, threshold: float, ngram: int, num_perm: int, seed: int
               ) -> pa.Table:
    """What grouping needs of each row: ``_vid``, its split key, its links and its band keys."""
    ids = table.column("id").combine_chunks()
    sh = shingle_sets(table.column("text"), ngram, seed)
    sig = signatures(sh, num_perm, seed)
    bands, rows = band_shape(threshold, num_perm)
    bk = lsh.band_keys(sig, bands, rows, seed)
    has = sh.sizes() > 0
    bkeys = pa.FixedSizeListArray.from_arrays(pa.array(bk.reshape(-1), pa.uint64()), bands)
    out = table.drop_columns([c for c in ("text",) if c in table.column_names])
    out = set_column(out, "_vid", pa.array(vids(ids), pa.int64()))
    out = set_column(out, "_key", keys)
    return set_column(out, "_bkeys", pc.if_else(pa.array(has), bkeys, pa.nulls(len(has), bkeys.type)))


def band_links(table: pa.Table) -> pa.Table:
    """(bkey, vid) of every band of every row with shingles."""
    table = table.filter(pc.is_valid(table.column("_bkeys")))
    bkeys = table.column("_bkeys").combine_chunks()
    vid = np.repeat(table.column("_vid").to_numpy(), bkeys.type.list_size)
    return pa.table({"bkey": bkeys.flatten(), "vid": pa.array(vid, pa.int64())})


def direct_links(table: pa.Table) -> pa.Table:
    """(u, v) links of each row to its dup_cluster and mix_of documents."""
    us, vs = [], []
    own = table.column("_vid").to_numpy()
    for link in (c for c in LINKS if c in table.column_names):
        col = table.column(link).cast(pa.string())
        valid = pc.is_valid(col).to_numpy(zero_copy_only=False)
        if valid.any():
            us.append(own[valid])
            vs.append(vids(col.filter(pa.array(valid))))
    if not us:
        return pa.table({"u": pa.array([], pa.int64()), "v": pa.array([], pa.int64())})
    return lsh.unique_pairs(np.concatenate(us), np.concatenate(vs))


def group_keys_local(rows: pa.Table, edges: pa.Table) -> pa.Table:
    """(``_vid``, group key) of every row in a component of two or more: the smallest member key."""
    if edges.num_rows == 0 or rows.num_rows == 0:
        return pa.table({"_vid": pa.array([], pa.int64()), GROUP_KEY: pa.array([], pa.string())})
    labels = components.components_local(edges)
    return keys_of_components(rows.select(["_vid", "_key"]).rename_columns(["_vid", "key"]), labels)


def keys_of_components(rows: pa.Table, labels: pa.Table) -> pa.Table:
    """Rows (``_vid``, key) and labels (vid, comp, sorted by vid) -> (``_vid``, smallest key of its comp)."""
    lv = labels.column("vid").to_numpy()
    pos, found = lookup(lv, rows.column("_vid").to_numpy())
    member = rows.filter(pa.array(found))
    comp = labels.column("comp").take(pa.array(pos[found]))
    best = pa.table({"comp": comp, "key": member.column("key")}).group_by("comp").aggregate([("key", "min")])
    order = pc.sort_indices(best, [("comp", "ascending")])
    best = best.take(order)
    cpos, _ = lookup(best.column("comp").to_numpy(), comp.to_numpy())
    return pa.table({"_vid": member.column("_vid"), GROUP_KEY: best.column("key_min").take(pa.array(cpos))})


def apply_group_keys(table: pa.Table, mapping: pa.Table, keys: pa.Array) -> pa.Array:
    """Each row's split key, replaced by its group's key where it has one (``mapping`` sorted by _vid)."""
    pos, found = lookup(mapping.column("_vid").to_numpy(), vids(table.column("id").combine_chunks()))
    grouped = mapping.column(GROUP_KEY).take(pa.array(pos, mask=~found))
    return pc.coalesce(grouped, keys)


def group_table(table: pa.Table, keys: pa.Array, *, threshold: float, ngram: int, num_perm: int,
                seed: int) -> pa.Array:
    """The whole grouping of one in-memory table: each row's grouped split key."""
    if "text" not in table.column_names or table.num_rows == 0:
        return keys
    rows = keyed_rows(table, keys=keys, threshold=threshold, ngram=ngram, num_perm=num_perm, seed=seed)
    edges = pa.concat_tables([lsh.bucket_pairs(band_links(rows), anchors=2), direct_links(rows)])
    mapping = group_keys_local(rows, lsh.unique_pairs(edges.column("u").to_numpy(), edges.column("v").to_numpy()))
    mapping = mapping.take(pc.sort_indices(mapping, [("_vid", "ascending")]))
    return apply_group_keys(table, mapping, keys)


def group_dataset(ds: Any, *, key_fn: Any, threshold: float, ngram: int, num_perm: int, seed: int,
                  local_max_pairs: int, num_partitions: int | None = None) -> Any:
    """``ds`` with a ``_split_group_key`` column: the grouped split key of every row, on Ray."""
    import ray

    from curator.dedup.shuffle import collect, map_partitions_by

    rows = ds.map_batches(_keyed, batch_format="pyarrow", fn_kwargs={
        "key_fn": key_fn, "threshold": threshold, "ngram": ngram, "num_perm": num_perm, "seed": seed}).materialize()
    if local_max_pairs and rows.count() <= LOCAL_MAX_DOCS:  # a small corpus: every step in this process, no shuffle
        table = collect(rows)
        if table is None:
            return rows
        edges = pa.concat_tables([lsh.bucket_pairs(band_links(table), anchors=2), direct_links(table)])
        edges = lsh.unique_pairs(edges.column("u").to_numpy(), edges.column("v").to_numpy())
        mapping = group_keys_local(table, edges)
        mapping = mapping.take(pc.sort_indices(mapping, [("_vid", "ascending")]))
        return rows.map_batches(_with_mapping, batch_format="pyarrow", fn_kwargs={"ref": ray.put(mapping)})
    pairs = map_partitions_by(rows.map_batches(band_links, batch_format="pyarrow"), "bkey", lsh.bucket_pairs,
                              num_partitions=num_partitions, fn_kwargs={"anchors": 2})
    edges = pairs.union(rows.map_batches(direct_links, batch_format="pyarrow")).materialize()
    n_edges = edges.count()
    if n_edges <= local_max_pairs:
        table = collect(edges)
        mapping = group_keys_local(collect(rows.map_batches(_vid_key, batch_format="pyarrow")) or _EMPTY_ROWS,
                                   table if table is not None else _EMPTY_EDGES)
        mapping = mapping.take(pc.sort_indices(mapping, [("_vid", "ascending")]))
        return rows.map_batches(_with_mapping, batch_format="pyarrow", fn_kwargs={"ref": ray.put(mapping)})
    labels = components.components_ray(edges, num_partitions=num_partitions or max(1, ds.num_blocks()))
    members = map_partitions_by(
        labels.map_batches(_label_side, batch_format="pyarrow").union(
            rows.map_batches(_row_side, batch_format="pyarrow")), "_vid", _join_labels,
        num_partitions=num_partitions)
    best = map_partitions_by(members, "comp", _min_key, num_partitions=num_partitions)
    docs = rows.map_batches(_doc_side, batch_format="pyarrow")
    schema = _doc_side(rows.schema().base_schema.empty_table()).schema
    return map_partitions_by(
        docs.union(best.map_batches(_best_side, batch_format="pyarrow", fn_kwargs={"schema": schema})), "_vid",
        _attach_best, num_partitions=num_partitions)


_EMPTY_ROWS = pa.table({"_vid": pa.array([], pa.int64()), "_key": pa.array([], pa.string())})
_EMPTY_EDGES = pa.table({"u": pa.array([], pa.int64()), "v": pa.array([], pa.int64())})


def _keyed(table: pa.Table, *, key_fn: Any, **kwargs: Any) -> pa.Table:
    return keyed_rows(table, keys=key_fn(table), **kwargs)


def _vid_key(table: pa.Table) -> pa.Table:
    return table.select(["_vid", "_key"])


def _with_mapping(rows: pa.Table, *, ref: Any) -> pa.Table:
    """Keyed rows -> their columns with the group key (helpers dropped)."""
    import ray

    mapping = ray.get(ref)
    pos, found = lookup(mapping.column("_vid").to_numpy(), rows.column("_vid").to_numpy())
    grouped = mapping.column(GROUP_KEY).take(pa.array(pos, mask=~found))
    out = set_column(rows, GROUP_KEY, pc.coalesce(grouped, rows.column("_key")))
    return out.drop_columns(_HELPERS)


# the distributed regime: rows of one schema (_vid, comp, key, side) joined by keyed shuffles
_JOIN = pa.schema([("_vid", pa.int64()), ("comp", pa.int64()), ("key", pa.string()), ("side", pa.int8())])


def _label_side(labels: pa.Table) -> pa.Table:
    n = labels.num_rows
    return pa.table([labels.column("vid"), labels.column("comp"), pa.nulls(n, pa.string()),
                     pa.array(np.zeros(n, np.int8))], schema=_JOIN)


def _row_side(rows: pa.Table) -> pa.Table:
    n = rows.num_rows
    return pa.table([rows.column("_vid"), pa.nulls(n, pa.int64()), rows.column("_key"),
                     pa.array(np.ones(n, np.int8))], schema=_JOIN)


def _join_labels(table: pa.Table) -> pa.Table:
    """Per _vid: the member's key with its component (rows without a component are left out)."""
    side = table.column("side")
    labels = table.filter(pc.equal(side, 0))
    labels = labels.take(pc.sort_indices(labels, [("_vid", "ascending")]))
    rows = table.filter(pc.equal(side, 1))
    pos, found = lookup(labels.column("_vid").to_numpy(), rows.column("_vid").to_numpy())
    rows = rows.filter(pa.array(found))
    return pa.table({"comp": labels.column("comp").take(pa.array(pos[found])), "_vid": rows.column("_vid"),
                     "key": rows.column("key")})


def _min_key(table: pa.Table) -> pa.Table:
    """Per component (whole components in a block): every member with the smallest key."""
    best = table.group_by("comp").aggregate([("key", "min")])
    best = best.take(pc.sort_indices(best, [("comp", "ascending")]))
    pos, _ = lookup(best.column("comp").to_numpy(), table.column("comp").to_numpy())
    return pa.table({"_vid": table.column("_vid"), GROUP_KEY: best.column("key_min").take(pa.array(pos))})


_DOC_SIDE = "_group_side"


def _doc_side(rows: pa.Table) -> pa.Table:
    """Keyed rows for the final join: their columns, ``_vid`` and the key as the group key so far."""
    table = set_column(rows.drop_columns([c for c in _HELPERS if c != "_vid"]), GROUP_KEY, rows.column("_key"))
    return set_column(table, _DOC_SIDE, pa.array(np.zeros(table.num_rows, np.int8)))


def _best_side(best: pa.Table, *, schema: pa.Schema) -> pa.Table:
    """Group keys as rows of the documents' schema (side 1)."""
    n = best.num_rows
    given = {"_vid": best.column("_vid"), GROUP_KEY: best.column(GROUP_KEY),
             _DOC_SIDE: pa.array(np.ones(n, np.int8))}
    return pa.table([given[f.name] if f.name in given else pa.nulls(n, f.type) for f in schema], schema=schema)


def _attach_best(table: pa.Table) -> pa.Table:
    side = table.column(_DOC_SIDE)
    best = table.filter(pc.equal(side, 1)).select(["_vid", GROUP_KEY])
    best = best.take(pc.sort_indices(best, [("_vid", "ascending")]))
    docs = table.filter(pc.equal(side, 0))
    pos, found = lookup(best.column("_vid").to_numpy(), docs.column("_vid").to_numpy())
    grouped = best.column(GROUP_KEY).take(pa.array(pos, mask=~found))
    docs = set_column(docs, GROUP_KEY, pc.coalesce(grouped, docs.column(GROUP_KEY)))
    return docs.drop_columns(["_vid", _DOC_SIDE])


_HELPERS = ["_vid", "_key", "_bkeys"]
