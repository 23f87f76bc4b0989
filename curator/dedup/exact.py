"""Exact deduplication: one document per normalized-text hash (stage ``exact_dedup``).

The text is normalized (lowercase and whitespace folded by default; punctuation stripping optional)
and hashed with 128-bit XXH3. On Ray only the keys, the digest and the rank columns of each row are
shuffled; the stage returns ``id``, ``_rowkey`` (when present) and its columns, not the text.
Rows are range-partitioned on that digest with Ray Data's sort shuffle, so
every copy of a text meets in one block and no process holds all hashes; each block then keeps one
document per digest by the keep policy (smallest id by default) and marks the rest ``exact_duplicate``.

Output columns: ``dup_cluster`` = id of the kept document on every member of a group of two or more
(null for unique texts), ``dup_of`` = id of the kept document on removed rows (null on kept rows),
``drop_reason`` = ``"exact_duplicate"`` on removed rows. The result does not depend on block order or
partitioning; rows come out in digest order.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from curator.dedup.keep import HashedTextConfig, rank_sort_keys, resolve_groups
from curator.dedup.shuffle import map_partitions_by
from curator.dedup.text import normalize, utf8_views
from curator.schema import DROP_REASON
from curator.stages.base import Column, GlobalStage
from curator.table import set_column, set_drops

HASH_COL = "_exact_hash"
LEN_COL = "_len"
REASON = "exact_duplicate"


class ExactDedupConfig(HashedTextConfig):
    """Options of ``exact_dedup``: all shared with the other text-hashing dedup stages."""


def text_digests(table: pa.Table, cfg: ExactDedupConfig) -> pa.Array:
    """16-byte XXH3-128 digest of each row's normalized text."""
    norm = normalize(
        table.column("text"), lowercase=cfg.lowercase, fold_whitespace=cfg.fold_whitespace,
        strip_punctuation=cfg.strip_punctuation,
    )
    digest = xxhash.xxh3_128_digest
    return pa.array([digest(v) for v in utf8_views(norm)], type=pa.binary(16))


def add_hash(table: pa.Table, cfg: ExactDedupConfig) -> pa.Table:
    table = set_column(table, HASH_COL, text_digests(table, cfg))
    if cfg.keep == "longest":
        table = set_column(table, LEN_COL, pc.utf8_length(pc.fill_null(table.column("text"), "")))
    return table


KEY_COLUMNS = ("_rowkey", "id")


def hash_rows(table: pa.Table, cfg: ExactDedupConfig) -> pa.Table:
    """What the shuffle needs of each row: its keys, digest and rank columns. The text stays behind (the
    executor joins the decisions back onto the documents by ``_rowkey``)."""
    table = add_hash(table, cfg)
    keep = [c for c in (*KEY_COLUMNS, HASH_COL, LEN_COL, cfg.score_column) if c and c in table.column_names]
    return table.select(keep)


def mark_duplicates(table: pa.Table, cfg: ExactDedupConfig, reason: str = REASON) -> pa.Table:
    """Within one block holding whole hash groups: set dup_cluster/dup_of/drop_reason, drop helpers."""
    if table.num_rows == 0:
        return _finish(table, pa.array([], pa.string()), pa.array([], pa.string()), [])
    table, dup_cluster, dup_of = resolve_groups(table, HASH_COL, cfg.keep, cfg.score_column)
    reasons = pc.if_else(pc.is_valid(dup_of), pa.scalar(reason), pa.scalar(None, pa.string()))
    return _finish(table, dup_cluster, dup_of, reasons)


def _finish(table: pa.Table, dup_cluster: pa.Array, dup_of: pa.Array, reasons: Any) -> pa.Table:
    table = set_column(table, "dup_cluster", dup_cluster, pa.string())
    table = set_column(table, "dup_of", dup_of, pa.string())
    table = set_drops(table, reasons)
    helpers = [c for c in (HASH_COL, LEN_COL) if c in table.column_names]
    return table.drop_columns(helpers)


def dedup_table(table: pa.Table, cfg: ExactDedupConfig | None = None) -> pa.Table:
    """Exact dedup of one in-memory table (the per-block kernel applied to everything)."""
    cfg = cfg or ExactDedupConfig()
    return mark_duplicates(add_hash(table, cfg), cfg)


class ExactDedup(GlobalStage[ExactDedupConfig]):
    """Drop documents whose normalized text equals an earlier-ranked one's (see module docstring)."""

    name: ClassVar[str] = "exact_dedup"
    writes: ClassVar[tuple[Column, ...]] = (
        Column("dup_cluster", "id of the best-ranked document of the duplicate cluster (null: no duplicate)"),
        Column("dup_of", "id of the kept document a removed one duplicates (null: kept)"),
    )
    drop_reasons: ClassVar[dict[str, str]] = {REASON: "the same normalized text as a better-ranked document"}

    def run(self, ds: Any, *, seed: int = 0) -> Any:
        cfg = self.config
        rank_sort_keys(cfg.keep, cfg.score_column)  # validate the policy before any work starts
        hashed = ds.map_batches(hash_rows, batch_format="pyarrow", fn_kwargs={"cfg": cfg})
        return map_partitions_by(hashed, HASH_COL, mark_duplicates, num_partitions=cfg.num_partitions,
                                 fn_kwargs={"cfg": cfg})


__all__ = ["ExactDedup", "ExactDedupConfig", "dedup_table", "DROP_REASON"]
