"""Fuzzy deduplication: MinHash LSH over word n-grams on Ray Data (stage ``fuzzy_dedup``).

Steps, each a vectorized kernel per block; every step that needs rows of one key together is a Ray
Data hash shuffle, so no process ever holds all signatures, pairs or edges:

1. signatures: normalized words -> n-gram shingle sets -> ``num_perm`` MinHash values -> ``bands``
   band keys (``curator.dedup.minhash`` / ``lsh``); the input is materialized once with these columns so
   upstream stages run only once;
2. buckets: band rows (key, doc) shuffled on the key; in each bucket the ``anchors`` smallest members
   pair with every other member (candidate pairs);
3. verification (``verify``, on by default): each candidate pair meets both shingle sets through two
   shuffles and stays only if its exact Jaccard >= ``threshold`` (LSH false positives removed);
4. connected components of the remaining pairs (alternating large/small star, ``components``);
5. resolution per component (``resolve``): rank by the keep policy, keep the best; with verification,
   a member is removed only as a duplicate (Jaccard >= threshold) of a kept member, else kept as well;
6. the ids of removed documents are joined back onto the documents.

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
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field, model_validator

from curator.dedup import components, lsh, resolve, verify
from curator.dedup.keep import KeepPolicy, rank_sort_keys
from curator.dedup.minhash import shingle_sets, signatures
from curator.dedup.shuffle import map_partitions_by
from curator.dedup.text import utf8_views
from curator.stages.base import GlobalStage, StageConfig, set_column, set_drops

log = logging.getLogger("curator.dedup")
REASON = "near_duplicate"
HELPERS = ("_vid", "_rank", "_sh", "_bkeys")
_PREV, _SIDE, _NEW_CLUSTER, _NEW_DUP_OF = "_prev_dup_cluster", "_side", "_new_dup_cluster", "_new_dup_of"


class FuzzyDedupConfig(StageConfig):
    threshold: float = Field(0.8, gt=0.0, lt=1.0, description="Jaccard similarity of duplicates")
    ngram: int = Field(5, ge=1, le=64, description="words per shingle")
    num_perm: int = Field(128, ge=2, le=4096, description="MinHash permutations")
    bands: int | None = Field(None, ge=1, description="LSH bands (with rows; default: optimal)")
    rows: int | None = Field(None, ge=1, description="LSH rows per band")
    fp_weight: float = Field(0.05, ge=0.0, le=1.0)
    fn_weight: float = Field(0.95, ge=0.0, le=1.0)
    seed: int | None = Field(None, description="hash seed (default: the run's seed)")
    verify: bool = Field(True, description="check candidate pairs by exact Jaccard of shingle sets")
    anchors: int = Field(2, ge=1, le=64, description="members per bucket paired with all others")
    keep: KeepPolicy = "first"
    score_column: str | None = None
    num_partitions: int | None = Field(None, ge=1)
    max_cc_rounds: int = Field(200, ge=1)
    cc_local_max_edges: int = Field(
        2_000_000, ge=0,
        description="verified edges up to which components are computed in the driver (0: always on Ray)")

    @model_validator(mode="after")
    def _check(self) -> FuzzyDedupConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("bands and rows must be given together")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError("bands * rows must not exceed num_perm")
        rank_sort_keys(self.keep, self.score_column)
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


def band_rows(table: pa.Table) -> pa.Table:
    """One (bkey, vid) row per band of each document that has shingles."""
    table = table.filter(pc.is_valid(table.column("_bkeys")))
    bkeys = table.column("_bkeys").combine_chunks()
    width = bkeys.type.list_size
    vid = np.repeat(table.column("_vid").to_numpy(), width)
    return pa.table({"bkey": bkeys.flatten(), "vid": pa.array(vid, pa.int64())})


def strip(table: pa.Table) -> pa.Table:
    """Document rows for the final join: helpers dropped, an earlier dup_cluster set aside."""
    table = table.drop_columns([c for c in (*HELPERS, "dup_of") if c in table.column_names])
    if "dup_cluster" in table.column_names:
        table = table.rename_columns([_PREV if c == "dup_cluster" else c for c in table.column_names])
    n = table.num_rows
    table = set_column(table, _SIDE, pa.array(np.zeros(n, np.int8)))
    table = set_column(table, _NEW_CLUSTER, pa.nulls(n, pa.string()))
    return set_column(table, _NEW_DUP_OF, pa.nulls(n, pa.string()))


def mapping_rows(mapping: pa.Table, schema: pa.Schema) -> pa.Table:
    """Resolution results (id, dup_cluster, dup_of) as rows of the stripped documents' schema."""
    n = mapping.num_rows
    given = {"id": mapping.column("id"), _SIDE: pa.array(np.ones(n, np.int8)),
             _NEW_CLUSTER: mapping.column("dup_cluster"), _NEW_DUP_OF: mapping.column("dup_of")}
    cols = [given[f.name] if f.name in given else pa.nulls(n, f.type) for f in schema]
    return pa.table(cols, schema=schema)


def apply_mapping(table: pa.Table) -> pa.Table:
    """Block kernel keyed by id: set dup_cluster / dup_of / drop_reason of documents from mapping rows."""
    side = table.column(_SIDE)
    docs = table.filter(pc.equal(side, 0))
    maps = table.filter(pc.equal(side, 1))
    idx = pc.index_in(docs.column("id"), value_set=maps.column("id").combine_chunks())
    cluster = maps.column(_NEW_CLUSTER).take(idx)
    dup_of = maps.column(_NEW_DUP_OF).take(idx)
    if _PREV in docs.column_names:
        cluster = pc.coalesce(cluster, docs.column(_PREV))
    docs = docs.drop_columns([c for c in (_PREV, _SIDE, _NEW_CLUSTER, _NEW_DUP_OF) if c in docs.column_names])
    docs = set_column(docs, "dup_cluster", cluster)
    docs = set_column(docs, "dup_of", dup_of)
    reasons = pc.if_else(pc.is_valid(dup_of), pa.scalar(REASON), pa.scalar(None, pa.string()))
    return set_drops(docs, reasons)


def _no_dups(table: pa.Table) -> pa.Table:
    return apply_mapping(strip(table))


def dedup_table(table: pa.Table, cfg: FuzzyDedupConfig | None = None, seed: int = 0) -> pa.Table:
    """The whole fuzzy dedup of one in-memory table, through the same kernels as the Ray stage."""
    cfg = cfg or FuzzyDedupConfig()
    seed = cfg.seed if cfg.seed is not None else seed
    bands, rows = cfg.band_shape()
    full = sign(table, cfg, seed, bands, rows)
    edges = lsh.bucket_pairs(band_rows(full), cfg.anchors)
    docs = full.select(["_vid", "id", "_rank", "_sh"])
    if cfg.verify:
        doc_rows = verify.doc_rows(docs)
        first = verify.attach_first(pa.concat_tables([verify.pair_rows(edges), doc_rows]))
        edges = verify.verify_second(pa.concat_tables([first, doc_rows]), cfg.threshold)
    if edges.num_rows == 0:
        return _no_dups(full)
    labels = components.components_local(edges, cfg.max_cc_rounds)
    members = resolve.attach_docs(pa.concat_tables([resolve.label_rows(labels),
                                                    resolve.doc_member_rows(docs)]))
    mapping = resolve.resolve_components(members, cfg.threshold, cfg.verify)
    stripped = strip(full)
    return apply_mapping(pa.concat_tables([stripped, mapping_rows(mapping, stripped.schema)]))


class FuzzyDedup(GlobalStage):
    """Drop near-duplicate documents (MinHash LSH + exact Jaccard check); see the module docstring."""

    name: ClassVar[str] = "fuzzy_dedup"
    Config: ClassVar[type[StageConfig]] = FuzzyDedupConfig

    def run(self, ds: Any, *, seed: int = 0) -> Any:
        cfg: FuzzyDedupConfig = self.config  # type: ignore[assignment]
        seed = cfg.seed if cfg.seed is not None else seed
        bands, rows = cfg.band_shape()
        n = cfg.num_partitions
        log.info("fuzzy_dedup: threshold %.2f, %d perms, %d bands x %d rows, %s partitions",
                 cfg.threshold, cfg.num_perm, bands, rows, n)
        kwargs = {"cfg": cfg, "seed": seed, "bands": bands, "rows": rows}
        full = ds.map_batches(sign, batch_format="pyarrow", fn_kwargs=kwargs).materialize()
        pairs = map_partitions_by(full.map_batches(band_rows, batch_format="pyarrow"), "bkey",
                                  lsh.bucket_pairs, num_partitions=n, fn_kwargs={"anchors": cfg.anchors})
        docs = full.select_columns(["_vid", "id", "_rank", "_sh"])
        edges = (self._verified(pairs, docs, cfg.threshold, n) if cfg.verify else pairs).materialize()
        if edges.count() == 0:
            return full.map_batches(_no_dups, batch_format="pyarrow")
        labels = components.components_ray(edges, num_partitions=n, max_rounds=cfg.max_cc_rounds,
                                           local_max_edges=cfg.cc_local_max_edges)
        members = map_partitions_by(
            labels.map_batches(resolve.label_rows, batch_format="pyarrow").union(
                docs.map_batches(resolve.doc_member_rows, batch_format="pyarrow")),
            "k", resolve.attach_docs, num_partitions=n)
        mapping = map_partitions_by(members, "comp", resolve.resolve_components, num_partitions=n,
                                    fn_kwargs={"threshold": cfg.threshold, "verify": cfg.verify})
        stripped = full.map_batches(strip, batch_format="pyarrow")
        schema = strip(full.schema().base_schema.empty_table()).schema
        rows = mapping.map_batches(mapping_rows, batch_format="pyarrow", fn_kwargs={"schema": schema})
        return map_partitions_by(stripped.union(rows), "id", apply_mapping, num_partitions=n)

    @staticmethod
    def _verified(pairs: Any, docs: Any, threshold: float, n: int) -> Any:
        doc_rows = docs.map_batches(verify.doc_rows, batch_format="pyarrow")
        first = map_partitions_by(pairs.map_batches(verify.pair_rows, batch_format="pyarrow").union(doc_rows),
                                  "k", verify.attach_first, num_partitions=n)
        return map_partitions_by(first.union(doc_rows), "k", verify.verify_second, num_partitions=n,
                                 fn_kwargs={"threshold": threshold})
