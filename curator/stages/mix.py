"""Data mixing to target proportions (stage ``mix``): "60% web, 20% code, 20% books".

``weights`` maps a value of ``column`` (default ``source``) to its target share; keys may be glob
patterns (``pile/*``), a value belongs to the first key it matches, and documents whose value matches
no key are dropped (weight 0, reason ``mix_downsampled``); a key with a positive share that matches no
document is an error. Shares are normalized to sum to 1. They count documents (``by: docs``) or
characters (``by: chars``, closer to tokens).

The total (``total``, in the same unit) defaults to the largest mix that needs no up-sampling: the
minimum over groups of (group size / share). Each group g then gets the target ``share_g * total``:

- down-sampling (target < size): the group's documents are ranked by a seeded XXH3 hash of their ``id``
  and the first ones are kept while they fit the target; the rest are dropped with reason
  ``mix_downsampled``;
- up-sampling (target > size): every document is repeated ``floor(target / size)`` times and the first
  ranked documents get one more copy while they fit the remainder. Copy k >= 1 of a document gets the id
  ``<id>#mix<k>``, ``mix_copy`` = k and ``mix_of`` = the original id (copy 0, the original, keeps its id,
  ``mix_copy`` = 0 and a null ``mix_of``); the ``split`` stage keeps the copies of a document together.

A first pass collects each row's (hash, group, size) on the driver (no shuffle); the plan is a per-group
repeat count and hash cut, applied by a plain map. Same input, weights and seed: same output.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field, field_validator

from curator.stages.base import Column, GlobalStage, StageConfig, set_column, set_drops

REASON = "mix_downsampled"
_H, _G, _W = "_mix_hash", "_mix_group", "_mix_weight"
NO_GROUP = -1


class MixConfig(StageConfig):
    column: str = Field("source", description="column whose values are mixed")
    weights: dict[str, float] = Field(min_length=1, description="value (or glob pattern) -> target share")
    by: Literal["docs", "chars"] = Field("docs", description="what the shares count")
    total: int | None = Field(None, ge=0, description="size of the mix, in documents or characters (as by says; "
                              "default: the largest mix without up-sampling)")
    seed: int | None = Field(None, description="hash seed (default: the run's seed)")

    @field_validator("weights")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in value.values()) or sum(value.values()) <= 0:
            raise ValueError("weights must be >= 0 with a positive sum")
        return value


def groups_of(table: pa.Table, cfg: MixConfig) -> np.ndarray:
    """Index of the first ``weights`` key each row's value matches (NO_GROUP for none or a null)."""
    if cfg.column not in table.column_names:
        raise KeyError(f"mix column {cfg.column!r} not in the table (columns: {table.column_names})")
    keys = list(cfg.weights)
    cache: dict[str | None, int] = {}

    def group(value: str | None) -> int:
        if value not in cache:
            cache[value] = NO_GROUP if value is None else next(
                (i for i, k in enumerate(keys) if value == k or fnmatch.fnmatchcase(value, k)), NO_GROUP)
        return cache[value]

    values = table.column(cfg.column).cast(pa.string()).to_pylist()
    return np.fromiter(map(group, values), dtype=np.int64, count=len(values))


def sizes_of(table: pa.Table, cfg: MixConfig) -> np.ndarray:
    if cfg.by == "docs":
        return np.ones(table.num_rows, np.int64)
    return pc.fill_null(pc.utf8_length(table.column("text")), 0).to_numpy(zero_copy_only=False).astype(np.int64)


def id_hashes(table: pa.Table, seed: int) -> np.ndarray:
    ids = pc.fill_null(table.column("id"), "").cast(pa.binary()).to_pylist()
    digest = xxhash.xxh3_64_intdigest
    return np.fromiter((digest(v, seed=seed) for v in ids), dtype=np.uint64, count=len(ids))


def collect_rows(table: pa.Table, cfg: MixConfig, seed: int) -> pa.Table:
    """First pass: (hash, group, size) of each row."""
    return pa.table({_H: pa.array(id_hashes(table, seed), pa.uint64()),
                     _G: pa.array(groups_of(table, cfg), pa.int64()),
                     _W: pa.array(sizes_of(table, cfg), pa.int64())})


def plan_mix(hashes: np.ndarray, groups: np.ndarray, sizes: np.ndarray, cfg: MixConfig) -> dict[str, Any]:
    """Per group: ``repeats`` (copies every document gets) and ``cut`` (a document with hash < cut gets
    one more copy), chosen so the group's total size is as close to its target as whole documents allow
    without exceeding it. Also returns the targets and the resulting sizes, for the record."""
    shares = np.array(list(cfg.weights.values()), dtype=np.float64)
    shares = shares / shares.sum()
    k = len(shares)
    have = np.array([int(sizes[groups == g].sum()) for g in range(k)], dtype=np.int64)
    empty = [key for g, key in enumerate(cfg.weights) if shares[g] > 0 and have[g] == 0]
    if empty and len(hashes):
        raise ValueError(f"mix: no documents (or no {cfg.by}) for weights key(s) {empty} in column {cfg.column!r}")
    if cfg.total is not None:
        total = float(cfg.total)
    else:
        ratios = [have[g] / shares[g] for g in range(k) if shares[g] > 0]
        total = float(min(ratios)) if ratios else 0.0
    target = np.floor(shares * total + 1e-9).astype(np.int64)
    repeats = np.zeros(k, np.int64)
    cuts: list[int] = [0] * k
    result = np.zeros(k, np.int64)
    for g in range(k):
        mine = np.flatnonzero(groups == g)
        if have[g] == 0 or target[g] == 0:
            continue
        repeats[g] = target[g] // have[g]
        rest = target[g] - repeats[g] * have[g]
        order = mine[np.argsort(hashes[mine], kind="stable")]
        taken = int(np.searchsorted(np.cumsum(sizes[order]), rest, side="right"))
        cuts[g] = int(hashes[order[taken]]) if taken < len(order) else 2**64
        result[g] = repeats[g] * have[g] + int(sizes[order[:taken]].sum())
    return {"repeats": repeats.tolist(), "cuts": cuts, "target": target.tolist(), "have": have.tolist(),
            "result": result.tolist()}


def apply_plan(table: pa.Table, cfg: MixConfig, seed: int, plan: dict[str, Any]) -> pa.Table:
    """Second pass: drop, keep or repeat each row as the plan says."""
    hashes, groups = id_hashes(table, seed), groups_of(table, cfg)
    repeats = np.array(plan["repeats"] + [0], np.int64)[groups]  # NO_GROUP (-1) picks the trailing 0
    cuts = plan["cuts"] + [0]
    extra = np.fromiter((h < cuts[g] for h, g in zip(hashes.tolist(), groups.tolist())), bool, count=len(groups))
    copies = repeats + extra
    table = set_column(table, "mix_copy", pa.array(np.zeros(len(copies), np.int32)))
    table = set_column(table, "mix_of", pa.nulls(len(copies), pa.string()))
    table = set_drops(table, np.where(copies == 0, REASON, None).tolist())
    if int(copies.max(initial=0)) <= 1:
        return table
    rows = np.repeat(np.arange(len(copies)), np.maximum(copies - 1, 0))
    copy_no = np.concatenate([np.arange(1, c, dtype=np.int32) for c in copies if c > 1])
    dup = table.take(pa.array(rows))
    ids = dup.column("id")
    new_ids = pc.binary_join_element_wise(ids, pa.array([f"mix{c}" for c in copy_no]), "#")
    id_at = dup.schema.get_field_index("id")
    dup = dup.set_column(id_at, dup.schema.field(id_at), new_ids)  # keep the field (e.g. non-nullable)
    dup = set_column(dup, "mix_copy", pa.array(copy_no, pa.int32()))
    dup = set_column(dup, "mix_of", ids)
    return pa.concat_tables([table, dup])


def mix_tables(tables: Iterable[pa.Table], cfg: MixConfig, seed: int) -> list[pa.Table]:
    """Mix in-memory tables with exactly the logic ``Mix.run`` applies to a dataset."""
    seed = cfg.seed if cfg.seed is not None else seed
    tables = list(tables)
    rows = [collect_rows(t, cfg, seed) for t in tables]
    cols = [np.concatenate([r.column(c).to_numpy() for r in rows]) for c in (_H, _G, _W)]
    plan = plan_mix(*cols, cfg)
    return [apply_plan(t, cfg, seed, plan) for t in tables]


class Mix(GlobalStage[MixConfig]):
    """Up-/down-sample the values of a column to target shares; see the module docstring."""

    name: ClassVar[str] = "mix"
    multiplies_rows: ClassVar[bool] = True
    writes: ClassVar[tuple[Column, ...]] = (
        Column("id", "the original id, or <id>#mix<k> on the k-th up-sampled copy"),
        Column("mix_copy", "0 on the original, k on the k-th copy"),
        Column("mix_of", "the original's id on a copy (null on the original)"),
    )
    drop_reasons: ClassVar[dict[str, str]] = {REASON: "down-sampled to reach the target share"}

    def run(self, ds: Any, *, seed: int = 0) -> Any:
        cfg = self.config
        seed = cfg.seed if cfg.seed is not None else seed
        parts: list[list[np.ndarray]] = [[], [], []]
        collected = ds.map_batches(collect_rows, batch_format="pyarrow", fn_kwargs={"cfg": cfg, "seed": seed})
        for batch in collected.iter_batches(batch_format="pyarrow", batch_size=None):
            for part, c in zip(parts, (_H, _G, _W)):
                part.append(batch.column(c).to_numpy())
        dtypes = (np.uint64, np.int64, np.int64)
        cols = [np.concatenate(p) if p else np.zeros(0, d) for p, d in zip(parts, dtypes)]
        plan = plan_mix(*cols, cfg)
        return ds.map_batches(apply_plan, batch_format="pyarrow", fn_kwargs={"cfg": cfg, "seed": seed, "plan": plan})
