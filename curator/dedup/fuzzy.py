"""Fuzzy deduplication: MinHash LSH over word n-grams on Ray Data (stage ``fuzzy_dedup``).

Steps, each a vectorized kernel per block; every step that needs rows of one key together is a Ray
Data shuffle (``curator.dedup.shuffle``), so no process ever holds all signatures or shingle sets:

1. signatures: normalized words -> n-gram shingle sets -> ``num_perm`` MinHash values -> ``bands``
   band keys (``curator.dedup.minhash`` / ``lsh``); the input is materialized once with these columns so
   upstream stages run only once;
2. buckets: band rows (key, doc) shuffled on the key; in each bucket the ``anchors`` smallest members
   pair with every other member (candidate pairs);
3. verification (``verify``, on by default): each candidate pair meets both shingle sets and stays only
   if its exact Jaccard >= ``threshold`` (LSH false positives removed);
4. connected components of the remaining pairs (alternating large/small star, ``components``);
5. resolution per component (``resolve``): rank by the keep policy, keep the best; with verification,
   a member is removed only as a duplicate (Jaccard >= threshold) of a kept member, else kept as well;
6. the resolution (dup_cluster, dup_of) is joined back onto the documents by vid.

How steps 3-6 move data depends on the graph's size. With at most ``local_max_pairs`` candidate pairs
(16 bytes each) the pairs come to the driver: only the candidate documents are kept for the later steps,
each pair is checked by one Ray task per pair of candidate blocks (no shingle shuffle), components are
computed in the driver, labels and the final removal map (one row per clustered document) are broadcast
through Ray's object store, and the documents themselves are never shuffled. Above it, every step is a
distributed shuffle (all documents' shingles in verification, through two keyed shuffles; components by
rounds of star contractions on Ray; the removal map joined onto the documents by a keyed shuffle), so
memory per process stays bounded however large the corpus and its graph. Both regimes give identical
output.

Bands x rows come from the threshold and the false-positive / false-negative weights (datasketch's
criterion), unless ``bands`` and ``rows`` are given. The defaults weigh false negatives heavily because
verification removes the false positives afterwards.

Output columns: ``dup_cluster`` = id of the best-ranked document of the component on each of its members
(null for documents with no near-duplicate; a value left by an earlier stage such as exact dedup is
kept for those), ``dup_of`` = id of the kept document a removed one duplicates (null if kept),
``drop_reason`` = ``"near_duplicate"`` on removed ones. Output is independent of block order and
partitioning for a given seed. Documents without any word never match anything (exact dedup handles
them). Document ids are mapped to 64-bit vids for the graph (a vid collision, about 1 in 2**64 per
pair of documents, would merge two documents' candidate lists).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field, model_validator

from curator.dedup import components, lsh, resolve, verify
from curator.dedup.keep import KeepConfig, KeepPolicy
from curator.dedup.lookup import lookup
from curator.dedup.minhash import shingle_sets, signatures
from curator.dedup.shuffle import collect, map_partitions_by
from curator.dedup.text import utf8_views
from curator.stages.base import Column, GlobalStage
from curator.table import set_column, set_drops

log = logging.getLogger("curator.dedup")
REASON = "near_duplicate"
HELPERS = ("_vid", "_rank", "_sh", "_bkeys")
MAX_PAIR_BLOCKS = 32  # candidate-document blocks in the driver regime's pairwise verification tasks
SIGN_BATCH = 1024  # documents per signature batch: whole blocks make the shingle arrays slow to sort
_SIDE, _MAP_CLUSTER, _MAP_DUP_OF = "_side", "_map_dup_cluster", "_map_dup_of"


class FuzzyDedupConfig(KeepConfig):
    threshold: float = Field(0.8, gt=0.0, lt=1.0, description="Jaccard similarity (0-1, exclusive) of the shingle "
                             "sets at or above which two documents are near-duplicates")
    ngram: int = Field(5, ge=1, le=64, description="words per shingle")
    num_perm: int = Field(128, ge=2, le=4096, description="MinHash permutations (signature length)")
    bands: int | None = Field(None, ge=1, description="LSH bands, given with rows (bands * rows <= num_perm; "
                              "default: chosen from threshold, fp_weight and fn_weight)")
    rows: int | None = Field(None, ge=1, description="signature values per LSH band, given with bands")
    fp_weight: float = Field(0.05, ge=0.0, le=1.0, description="weight (0-1) of the false-positive area when "
                             "bands and rows are chosen")
    fn_weight: float = Field(0.95, ge=0.0, le=1.0, description="weight (0-1) of the false-negative area when "
                             "bands and rows are chosen")
    seed: int | None = Field(None, description="hash seed (default: the run's seed)")
    verify: bool = Field(True, description="check candidate pairs by exact Jaccard of shingle sets")
    anchors: int = Field(2, ge=1, le=64, description="members per bucket paired with all others")
    max_cc_rounds: int = Field(200, ge=1, description="connected-components rounds at most; more is an error")
    local_max_pairs: int = Field(
        1_000_000, ge=0,
        description="candidate pairs up to which pairs, components and the removal map pass through the driver "
                    "and are broadcast (0: every step is a distributed shuffle)")

    @model_validator(mode="after")
    def _check(self) -> FuzzyDedupConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("bands and rows must be given together")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError("bands * rows must not exceed num_perm")
        return self

    def band_shape(self) -> tuple[int, int]:
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        return lsh.optimal_bands(self.threshold, self.num_perm, self.fp_weight, self.fn_weight)


def vids(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """64-bit graph vertex ids of document ids (XXH3-64 as int64)."""
    h = xxhash.xxh3_64_intdigest
    return np.fromiter((h(v) for v in utf8_views(ids)), np.uint64, count=len(ids)).view(np.int64)


def rank_values(table: pa.Table, keep: KeepPolicy, score_column: str | None) -> pa.Array:
    """The keep-policy rank of each row, higher is better (ties: smaller id)."""
    n = table.num_rows
    if keep == "first":
        return pa.array(np.zeros(n), pa.float64())
    if keep == "longest":
        return pc.cast(pc.utf8_length(pc.fill_null(table.column("text"), "")), pa.float64())
    if score_column not in table.column_names:
        raise ValueError(f"fuzzy_dedup keep='score': no column {score_column!r} in the data")
    return pc.fill_null(pc.cast(table.column(score_column), pa.float64()), -np.inf)


def sign(table: pa.Table, cfg: FuzzyDedupConfig, seed: int, bands: int, rows: int) -> pa.Table:
    """Block kernel: add ``_vid``, ``_rank``, ``_sh`` (shingle set) and ``_bkeys`` (band keys)."""
    ids = table.column("id").combine_chunks()
    sh = shingle_sets(table.column("text"), cfg.ngram, seed)
    sig = signatures(sh, cfg.num_perm, seed)
    keys = lsh.band_keys(sig, bands, rows, seed)
    has = sh.sizes() > 0
    bkeys = pa.FixedSizeListArray.from_arrays(pa.array(keys.reshape(-1), pa.uint64()), bands)
    bkeys = pc.if_else(pa.array(has), bkeys, pa.nulls(len(has), bkeys.type))
    table = set_column(table, "_vid", pa.array(vids(ids), pa.int64()))
    table = set_column(table, "_rank", rank_values(table, cfg.keep, cfg.score_column))
    shingles = sh.to_arrow() if cfg.verify else pa.nulls(table.num_rows, verify.SHINGLES)
    table = set_column(table, "_sh", shingles)
    return set_column(table, "_bkeys", bkeys)


KEEP_COLUMNS = ("_rowkey", "id", "dup_cluster", *HELPERS)


def sign_keys(table: pa.Table, cfg: FuzzyDedupConfig, seed: int, bands: int, rows: int) -> pa.Table:
    """``sign``, keeping only keys, the earlier ``dup_cluster`` and the helpers: on Ray the text stays behind
    (the executor joins the decisions back onto the documents by ``_rowkey``)."""
    signed = sign(table, cfg, seed, bands, rows)
    return signed.select([c for c in KEEP_COLUMNS if c in signed.column_names])


def band_rows(table: pa.Table) -> pa.Table:
    """One (bkey, vid) row per band of each document that has shingles."""
    table = table.filter(pc.is_valid(table.column("_bkeys")))
    bkeys = table.column("_bkeys").combine_chunks()
    width = bkeys.type.list_size
    vid = np.repeat(table.column("_vid").to_numpy(), width)
    return pa.table({"bkey": bkeys.flatten(), "vid": pa.array(vid, pa.int64())})


def candidate_docs(table: pa.Table, vids: np.ndarray | None = None) -> pa.Table:
    """The (_vid, id, _rank, _sh) rows of a signed block, only those whose vid is in sorted ``vids`` if given."""
    docs = table.select(["_vid", "id", "_rank", "_sh"])
    if vids is None:
        return docs
    return docs.filter(pa.array(lookup(vids, docs.column("_vid").to_numpy())[1]))


def apply_mapping(table: pa.Table, mapping: pa.Table) -> pa.Table:
    """Signed documents + resolution rows (_vid, dup_cluster, dup_of; sorted by _vid) -> output documents.

    A ``dup_cluster`` left by an earlier stage is kept on documents this stage found no duplicate for.
    """
    pos, found = lookup(mapping.column("_vid").to_numpy(), table.column("_vid").to_numpy())
    idx = pa.array(pos, mask=~found)
    cluster = mapping.column("dup_cluster").take(idx)
    dup_of = mapping.column("dup_of").take(idx)
    if "dup_cluster" in table.column_names:
        cluster = pc.coalesce(cluster, table.column("dup_cluster"))
    table = table.drop_columns([c for c in (*HELPERS, "dup_of", _SIDE) if c in table.column_names])
    table = set_column(table, "dup_cluster", cluster)
    table = set_column(table, "dup_of", dup_of)
    reasons = pc.if_else(pc.is_valid(dup_of), pa.scalar(REASON), pa.scalar(None, pa.string()))
    return set_drops(table, reasons)


def doc_side(table: pa.Table) -> pa.Table:
    """Signed documents as rows of the final keyed join: heavy helpers dropped, ``_side`` = 0."""
    table = table.drop_columns(["_rank", "_sh", "_bkeys"])
    n = table.num_rows
    table = set_column(table, _SIDE, pa.array(np.zeros(n, np.int8)))
    table = set_column(table, _MAP_CLUSTER, pa.nulls(n, pa.string()))
    return set_column(table, _MAP_DUP_OF, pa.nulls(n, pa.string()))


def mapping_side(mapping: pa.Table, schema: pa.Schema) -> pa.Table:
    """Resolution rows (_vid, dup_cluster, dup_of) as rows of ``doc_side``'s schema, ``_side`` = 1."""
    n = mapping.num_rows
    given = {"_vid": mapping.column("_vid"), _SIDE: pa.array(np.ones(n, np.int8)),
             _MAP_CLUSTER: mapping.column("dup_cluster"), _MAP_DUP_OF: mapping.column("dup_of")}
    cols = [given[f.name] if f.name in given else pa.nulls(n, f.type) for f in schema]
    return pa.table(cols, schema=schema)


def join_mapping(table: pa.Table) -> pa.Table:
    """Block kernel keyed by _vid over ``doc_side`` + ``mapping_side`` rows: ``apply_mapping`` per block."""
    side = table.column(_SIDE)
    maps = table.filter(pc.equal(side, 1))
    mapping = pa.table({"_vid": maps.column("_vid"), "dup_cluster": maps.column(_MAP_CLUSTER),
                        "dup_of": maps.column(_MAP_DUP_OF)})
    mapping = mapping.take(pc.sort_indices(mapping, [("_vid", "ascending")]))
    docs = table.filter(pc.equal(side, 0)).drop_columns([_MAP_CLUSTER, _MAP_DUP_OF])
    return apply_mapping(docs, mapping)


def _with_refs(table: pa.Table, fn: Callable[..., pa.Table], refs: dict[str, Any], **kwargs: Any) -> pa.Table:
    """Call a block kernel with broadcast objects fetched from Ray's object store (zero-copy arrays)."""
    import ray

    return fn(table, **{k: ray.get(r) for k, r in refs.items()}, **kwargs)


def _sorted_by_vid(mapping: pa.Table | None) -> pa.Table:
    if mapping is None:
        return resolve.MAPPING_SCHEMA.empty_table()
    return mapping.take(pc.sort_indices(mapping, [("_vid", "ascending")]))


def dedup_table(table: pa.Table, cfg: FuzzyDedupConfig | None = None, seed: int = 0) -> pa.Table:
    """The whole fuzzy dedup of one in-memory table, through the same kernels as the Ray stage."""
    cfg = cfg or FuzzyDedupConfig()
    seed = cfg.seed if cfg.seed is not None else seed
    bands, rows = cfg.band_shape()
    full = sign(table, cfg, seed, bands, rows)
    edges = lsh.bucket_pairs(band_rows(full), cfg.anchors)
    docs = candidate_docs(full, _endpoints(edges))
    if cfg.verify:
        u, v = edges.column("u").to_numpy(), edges.column("v").to_numpy()
        edges = edges.filter(pa.array(verify.verify_blocks(docs, docs, u, v, cfg.threshold)))
    if edges.num_rows == 0:
        return apply_mapping(full, resolve.MAPPING_SCHEMA.empty_table())
    members = resolve.labelled_members(docs, components.components_local(edges, cfg.max_cc_rounds))
    return apply_mapping(full, _sorted_by_vid(resolve.resolve_components(members, cfg.threshold, cfg.verify)))


def _endpoints(edges: pa.Table) -> np.ndarray:
    """Sorted unique vids of an edge table (u, v)."""
    return np.unique(np.concatenate([edges.column("u").to_numpy(), edges.column("v").to_numpy()]))


class FuzzyDedup(GlobalStage[FuzzyDedupConfig]):
    """Drop near-duplicate documents (MinHash LSH + exact Jaccard check); see the module docstring."""

    name: ClassVar[str] = "fuzzy_dedup"
    writes: ClassVar[tuple[Column, ...]] = (
        Column("dup_cluster", "id of the best-ranked document of the duplicate cluster (null: no duplicate)"),
        Column("dup_of", "id of the kept document a removed one duplicates (null: kept)"),
    )
    drop_reasons: ClassVar[dict[str, str]] = {REASON: "Jaccard similarity >= threshold with a kept document"}

    def run(self, ds: Any, *, seed: int = 0) -> Any:
        cfg = self.config
        seed = cfg.seed if cfg.seed is not None else seed
        bands, rows = cfg.band_shape()
        n = cfg.num_partitions
        log.info("fuzzy_dedup: threshold %.2f, %d perms, %d bands x %d rows", cfg.threshold, cfg.num_perm,
                 bands, rows)
        kwargs = {"cfg": cfg, "seed": seed, "bands": bands, "rows": rows}
        full = ds.map_batches(sign_keys, batch_size=SIGN_BATCH, batch_format="pyarrow",
                              fn_kwargs=kwargs).materialize()
        pairs = map_partitions_by(full.map_batches(band_rows, batch_format="pyarrow"), "bkey", lsh.bucket_pairs,
                                  num_partitions=n, fn_kwargs={"anchors": cfg.anchors}).materialize()
        n_pairs = pairs.count()
        log.info("fuzzy_dedup: %d candidate pairs", n_pairs)
        if n_pairs <= cfg.local_max_pairs:
            mapping = self._resolve_via_driver(full, pairs, cfg)
            return full.map_batches(_with_refs, batch_format="pyarrow",
                                    fn_kwargs={"fn": apply_mapping, "refs": {"mapping": mapping}})
        return self._resolve_distributed(full, pairs, cfg)

    @staticmethod
    def _resolve_via_driver(full: Any, pairs: Any, cfg: FuzzyDedupConfig) -> Any:
        """Small graphs: candidate pairs, components and the removal map pass through this process (at most
        ``local_max_pairs`` pairs); only candidate documents' shingles are read, and shuffled only once,
        to group each component's members."""
        import ray

        table = collect(pairs)
        if table is None:
            return ray.put(resolve.MAPPING_SCHEMA.empty_table())
        docs = full.map_batches(_with_refs, batch_format="pyarrow", fn_kwargs={
            "fn": candidate_docs, "refs": {"vids": ray.put(_endpoints(table))}}).materialize()
        edges = _verify_by_blocks(table, docs, cfg.threshold) if cfg.verify else table
        if edges.num_rows == 0:
            return ray.put(resolve.MAPPING_SCHEMA.empty_table())
        labels = ray.put(components.components_local(edges, cfg.max_cc_rounds))
        members = docs.map_batches(_with_refs, batch_format="pyarrow", fn_kwargs={
            "fn": resolve.labelled_members, "refs": {"labels": labels}})
        mapping = map_partitions_by(members, "comp", resolve.resolve_components, num_partitions=cfg.num_partitions,
                                    fn_kwargs={"threshold": cfg.threshold, "verify": cfg.verify})
        return ray.put(_sorted_by_vid(collect(mapping)))

    @staticmethod
    def _resolve_distributed(full: Any, pairs: Any, cfg: FuzzyDedupConfig) -> Any:
        """Large graphs: every step is a keyed shuffle; no process holds the pairs, labels or removal map."""
        n = cfg.num_partitions
        docs = full.map_batches(candidate_docs, batch_format="pyarrow")
        edges = (_verified(pairs, docs, cfg.threshold, n) if cfg.verify else pairs).materialize()
        if edges.count() == 0:
            return full.map_batches(apply_mapping, batch_format="pyarrow",
                                    fn_kwargs={"mapping": resolve.MAPPING_SCHEMA.empty_table()})
        labels = components.components_ray(edges, num_partitions=n, max_rounds=cfg.max_cc_rounds,
                                           local_max_edges=cfg.local_max_pairs)
        members = map_partitions_by(
            labels.map_batches(resolve.label_rows, batch_format="pyarrow").union(
                docs.map_batches(resolve.doc_member_rows, batch_format="pyarrow")),
            "k", resolve.attach_docs, num_partitions=n)
        mapping = map_partitions_by(members, "comp", resolve.resolve_components, num_partitions=n,
                                    fn_kwargs={"threshold": cfg.threshold, "verify": cfg.verify})
        schema = doc_side(full.schema().base_schema.empty_table()).schema
        docs_side = full.map_batches(doc_side, batch_format="pyarrow")
        maps_side = mapping.map_batches(mapping_side, batch_format="pyarrow", fn_kwargs={"schema": schema})
        return map_partitions_by(docs_side.union(maps_side), "_vid", join_mapping, num_partitions=n)


def _verify_by_blocks(pairs: pa.Table, docs: Any, threshold: float) -> pa.Table:
    """The pairs (u, v) with exact Jaccard >= threshold: one Ray task per pair of candidate-document blocks
    checks the pairs whose documents lie in those two blocks (at most ``MAX_PAIR_BLOCKS`` blocks, so
    at most 528 tasks); no shingle set is shuffled."""
    import ray

    if docs.num_blocks() > MAX_PAIR_BLOCKS:
        docs = docs.repartition(MAX_PAIR_BLOCKS).materialize()
    refs = docs.to_arrow_refs()
    block_vids = ray.get([ray.remote(_vid_column).remote(r) for r in refs])
    # a repartition of many blocks holding few rows makes empty blocks (without columns): leave them out
    refs = [r for r, b in zip(refs, block_vids) if len(b)]
    block_vids = [b for b in block_vids if len(b)]
    if not refs or pairs.num_rows == 0:
        return pa.table({"u": pa.array([], pa.int64()), "v": pa.array([], pa.int64())})
    all_vids = np.concatenate(block_vids)
    order = np.argsort(all_vids, kind="stable")
    block_of = np.repeat(np.arange(len(refs)), [len(b) for b in block_vids])[order]
    u, v = pairs.column("u").to_numpy(), pairs.column("v").to_numpy()
    bu, bv = (block_of[lookup(all_vids[order], x)[0]] for x in (u, v))
    swap = bu > bv  # each cell (a <= b) takes its pairs with the document of block a first
    a, b = np.where(swap, bv, bu), np.where(swap, bu, bv)
    first, second = np.where(swap, v, u), np.where(swap, u, v)
    cell = a * len(refs) + b
    by_cell = np.argsort(cell, kind="stable")
    starts = np.flatnonzero(np.r_[True, cell[by_cell][1:] != cell[by_cell][:-1]])
    groups = np.split(by_cell, starts[1:])
    task = ray.remote(verify.verify_blocks)
    masks = ray.get([task.remote(refs[a[g[0]]], refs[b[g[0]]], first[g], second[g], threshold) for g in groups])
    keep = np.concatenate(groups)[np.concatenate(masks)] if groups else np.zeros(0, np.int64)
    keep.sort()
    return pa.table({"u": pa.array(u[keep], pa.int64()), "v": pa.array(v[keep], pa.int64())})


def _vid_column(block: pa.Table) -> np.ndarray:
    if "_vid" not in block.column_names:  # an empty block has no columns
        return np.zeros(0, np.int64)
    return block.column("_vid").to_numpy()


def _verified(pairs: Any, docs: Any, threshold: float, n: int | None) -> Any:
    """Candidate pairs (u, v) with exact Jaccard >= threshold: each pair meets both shingle sets through two
    keyed shuffles of pair rows and document rows."""
    doc_rows = docs.map_batches(verify.doc_rows, batch_format="pyarrow")
    first = map_partitions_by(pairs.map_batches(verify.pair_rows, batch_format="pyarrow").union(doc_rows),
                              "k", verify.attach_first, num_partitions=n)
    return map_partitions_by(first.union(doc_rows), "k", verify.verify_second, num_partitions=n,
                             fn_kwargs={"threshold": threshold})
