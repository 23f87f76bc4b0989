"""Pick the documents to keep in each connected component of the duplicate graph.

Members are ranked by the keep policy (``_rank`` descending, then id). With verification on, the
component is resolved greedily in rank order: a member is removed, as a duplicate of the best-ranked
kept member it reaches Jaccard >= threshold with; otherwise it is kept too. So every removed document
has a kept partner at or above the threshold (no removal through a transitive chain of partners) and no
two kept members of a component are duplicates. Without verification the best-ranked member is kept and
all others are removed (the classic behaviour).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curator.dedup.keep import sort_indices
from curator.dedup.lookup import lookup
from curator.dedup.minhash import jaccard_sorted
from curator.dedup.verify import SHINGLES, list_parts

MEMBER_SCHEMA = pa.schema([("k", pa.int64()), ("comp", pa.int64()), ("id", pa.string()),
                           ("_rank", pa.float64()), ("_sh", SHINGLES)])
MAPPING_SCHEMA = pa.schema([("_vid", pa.int64()), ("dup_cluster", pa.string()), ("dup_of", pa.string())])


def label_rows(labels: pa.Table) -> pa.Table:
    """Component labels (vid, comp) as member rows with no document data yet."""
    n = labels.num_rows
    return pa.table([labels.column("vid"), labels.column("comp"), pa.nulls(n, pa.string()),
                     pa.nulls(n, pa.float64()), pa.nulls(n, SHINGLES)], schema=MEMBER_SCHEMA)


def doc_member_rows(docs: pa.Table) -> pa.Table:
    """Documents (_vid, id, _rank, _sh) as member rows with no component (comp = -1)."""
    n = docs.num_rows
    return pa.table([docs.column("_vid"), pa.array(np.full(n, -1, np.int64)), docs.column("id"),
                     docs.column("_rank"), docs.column("_sh")], schema=MEMBER_SCHEMA)


def labelled_members(docs: pa.Table, labels: pa.Table) -> pa.Table:
    """Documents (_vid, id, _rank, _sh) that have a component label -> member rows with their ``comp``.

    ``labels`` holds (vid, comp) sorted by vid, each vid once.
    """
    pos, hit = lookup(labels.column("vid").to_numpy(), docs.column("_vid").to_numpy())
    docs = docs.filter(pa.array(hit))
    comp = labels.column("comp").to_numpy()[pos[hit]]
    return pa.table([docs.column("_vid"), pa.array(comp, pa.int64()), docs.column("id"), docs.column("_rank"),
                     docs.column("_sh")], schema=MEMBER_SCHEMA)


def attach_docs(table: pa.Table) -> pa.Table:
    """Block kernel keyed by vid: label rows + document rows -> one member row per labelled document."""
    is_doc = pc.is_valid(table.column("id"))
    docs = table.filter(is_doc)
    labels = table.filter(pc.invert(is_doc))
    vid, first = np.unique(labels.column("k").to_numpy(), return_index=True)  # a root may come twice
    labels = pa.table({"vid": vid, "comp": labels.column("comp").to_numpy()[first]})
    docs = pa.table({"_vid": docs.column("k"), "id": docs.column("id"), "_rank": docs.column("_rank"),
                     "_sh": docs.column("_sh")})
    return labelled_members(docs, labels)


def resolve_components(table: pa.Table, threshold: float, verify: bool) -> pa.Table:
    """Block kernel keyed by comp: (_vid, dup_cluster, dup_of) for every member of every component."""
    if table.num_rows == 0:
        return MAPPING_SCHEMA.empty_table()
    table = table.take(sort_indices(table, [("comp", "ascending"), ("_rank", "descending"),
                                            ("id", "ascending")]))
    comp = table.column("comp").to_numpy()
    ids = table.column("id").to_pylist()
    starts = np.flatnonzero(np.r_[True, comp[1:] != comp[:-1]])
    ends = np.r_[starts[1:], len(comp)]
    dup_cluster: list[str | None] = [None] * len(ids)
    dup_of: list[str | None] = [None] * len(ids)
    values, offsets = list_parts(table.column("_sh")) if verify else (None, None)
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if e - s < 2:
            continue  # a lone member (its partners were other component members' duplicates)
        for i in range(s, e):
            dup_cluster[i] = ids[s]
        if not verify:
            for i in range(s + 1, e):
                dup_of[i] = ids[s]
            continue
        kept = [s]
        for i in range(s + 1, e):
            mine = values[offsets[i]: offsets[i + 1]]
            for k in kept:
                if jaccard_sorted(mine, values[offsets[k]: offsets[k + 1]]) >= threshold:
                    dup_of[i] = ids[k]
                    break
            else:
                kept.append(i)
    return pa.table([table.column("k"), pa.array(dup_cluster, pa.string()), pa.array(dup_of, pa.string())],
                    schema=MAPPING_SCHEMA)
