"""Keep policy: which document of a duplicate cluster stays. Deterministic, independent of row order."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from curator.stages.base import StageConfig

KeepPolicy = Literal["first", "longest", "score"]
_PER_KEY_NULLS = int(pa.__version__.split(".")[0]) >= 25


def rank_sort_keys(keep: KeepPolicy, score_column: str | None) -> list[tuple[str, str]]:
    """Sort keys (after the group key) that put the document to keep first in its group.

    ``first``: smallest id. ``longest``: most characters, ties by smallest id. ``score``: highest value
    of ``score_column`` (nulls last), ties by smallest id. The rank column ``_len`` must hold text
    lengths for ``longest``.
    """
    if keep == "first":
        return [("id", "ascending")]
    if keep == "longest":
        return [("_len", "descending"), ("id", "ascending")]
    if keep == "score":
        if not score_column:
            raise ValueError("keep='score' needs score_column")
        return [(score_column, "descending"), ("id", "ascending")]
    raise ValueError(f"unknown keep policy {keep!r}")


def sort_indices(table: pa.Table, keys: list[tuple[str, str]]) -> pa.Array:
    """``pc.sort_indices`` with nulls last on every key (pyarrow >= 25 takes it per key)."""
    if _PER_KEY_NULLS:
        return pc.sort_indices(table, sort_keys=[(k, o, "at_end") for k, o in keys])
    return pc.sort_indices(table, sort_keys=keys, null_placement="at_end")


def group_starts(sorted_keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Boolean mask: True where a run of equal keys begins in an already-sorted key column."""
    n = len(sorted_keys)
    first = np.ones(n, dtype=bool)
    if n > 1:
        keys = sorted_keys.combine_chunks() if isinstance(sorted_keys, pa.ChunkedArray) else sorted_keys
        diff = pc.not_equal(keys.slice(1), keys.slice(0, n - 1))
        first[1:] = diff.to_numpy(zero_copy_only=False)
    return first


def resolve_groups(
    table: pa.Table, group_key: str, keep: KeepPolicy, score_column: str | None
) -> tuple[pa.Table, pa.Array, pa.Array]:
    """Sort ``table`` by group then keep rank; return it with per-row ``dup_cluster`` and ``dup_of``.

    Rows that tie on the policy and the id are ordered by ``_rowkey`` (input position) when the table has
    it, so which one stays never depends on the shuffle. ``dup_cluster`` is the kept id of the row's group
    when the group has two or more rows, else null;
    ``dup_of`` is the kept id for every row but the first of its group, else null.
    """
    keys = [(group_key, "ascending"), *rank_sort_keys(keep, score_column)]
    if "_rowkey" in table.column_names:  # two rows with one id (a file read twice): the earlier input row stays
        keys.append(("_rowkey", "ascending"))
    table = table.take(sort_indices(table, keys))
    first = group_starts(table.column(group_key))
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    sizes = np.diff(np.append(starts, len(first)))
    kept = table.column("id").combine_chunks().take(pa.array(starts))
    kept_per_row = kept.take(pa.array(group))
    in_cluster = pa.array(sizes[group] > 1)
    null = pa.nulls(len(first), pa.string())
    dup_cluster = pc.if_else(in_cluster, kept_per_row, null)
    dup_of = pc.if_else(pa.array(~first), kept_per_row, null)
    return table, dup_cluster, dup_of


class KeepConfig(StageConfig):
    """What every dedup stage asks: which document of a duplicate group stays, and the shuffle width."""

    keep: KeepPolicy = Field("first", description="which document of a duplicate group stays: first (smallest "
                             "id), longest (most characters) or score (highest score_column); ties: smallest id")
    score_column: str | None = Field(None, description="column ranking documents for keep: score (higher is better)")
    num_partitions: int | None = Field(None, ge=1, description="shuffle partitions (default: input blocks)")

    @model_validator(mode="after")
    def _check_keep(self) -> KeepConfig:
        rank_sort_keys(self.keep, self.score_column)
        return self


class HashedTextConfig(KeepConfig):
    """A dedup stage that hashes normalized text (whole documents or paragraphs)."""

    lowercase: bool = Field(True, description="lowercase the text before hashing")
    fold_whitespace: bool = Field(True, description="collapse whitespace runs to one space and trim before hashing")
    strip_punctuation: bool = Field(False, description="replace Unicode punctuation and symbol runs with a space "
                                    "before hashing")
