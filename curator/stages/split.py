"""Deterministic train/eval split (stage ``split``).

Every document gets a 64-bit XXH3 hash of its split key (seeded by ``seed``, default the run's seed) and
goes to ``eval`` when the hash falls below a cut, else to ``train``; the result is written to the
``split`` column and the Parquet writer routes the rows to ``<out>/train/`` and ``<out>/eval/``. Nothing
is dropped. All rows that share a key land on one side, and the same key + seed always gives the same
side, whatever the batching or order.

The key (``key``): ``auto`` (default) uses ``dup_cluster`` where a dedup stage set it, else ``mix_of``
(the original of a ``mix`` up-sampled copy), else ``id``; so a cluster of near-duplicates, or the copies
of one document, never straddle the split. Any other value names a column to hash (nulls fall back to
``id``).

Near-duplicates that no dedup stage clustered are grouped too (``group_near_duplicates``, on by default;
``curator.stages.split_groups``): MinHash LSH at a lower similarity than dedup's links them, and every
member of a group takes the smallest key among its members, so no group straddles the split. The key the
split hashed is written to ``split_group``.

Sizes:
- ``eval_fraction`` alone with no near-duplicate grouping (``group_near_duplicates: false`` or no text):
  a row is ``eval`` when ``hash < fraction * 2**64``. No count and no shuffle are needed (a plain map over
  the blocks); the eval share is ``fraction`` up to sampling noise.
- ``eval_size`` (a number of documents), ``stratify_by`` (a column such as ``source`` or ``lang``), or a
  near-duplicate grouping (whose groups can be large: one component of hundreds of boilerplate-sharing
  pages would otherwise make the eval share whatever side it lands on): a first pass collects each row's
  hash and stratum on the driver (8 bytes and a stratum per row; no shuffle); each stratum gets a quota
  (``eval_fraction`` of its rows, or ``eval_size`` shared in proportion to stratum sizes by largest
  remainder) and takes whole groups in hash order; a group larger than what is left of the quota stays in
  train. A group whose members sit in several strata counts in the smallest stratum value. Eval then holds
  at most the quota, and exactly it whenever small groups remain.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field, model_validator

from curator.stages.base import Column, GlobalStage, StageConfig, set_column
from curator.stages.split_groups import GROUP_KEY, group_dataset, group_table

SPLIT = "split"
SPLIT_GROUP = "split_group"
TRAIN, EVAL = "train", "eval"
AUTO_KEYS = ("dup_cluster", "mix_of", "id")
_H, _S = "_split_hash", "_split_stratum"
_NULL_STRATUM = "\x00null"  # stands for a null stratum value on the driver


class SplitConfig(StageConfig):
    key: str = Field("auto", description="column hashed for the split; auto: dup_cluster, mix_of, then id")
    eval_fraction: float | None = Field(0.01, ge=0.0, le=1.0, description="share of documents in eval")
    eval_size: int | None = Field(None, ge=0, description="number of eval documents (overrides the fraction)")
    stratify_by: str | None = Field(None, description="column whose values each get their share of eval")
    seed: int | None = Field(None, description="hash seed (default: the run's seed)")
    rounding: Literal["floor", "nearest"] = Field("nearest", description="per-stratum quota rounding")
    group_near_duplicates: bool = Field(
        True, description="group near-duplicates by MinHash LSH (with dup_cluster and mix_of links) so no group "
        "straddles the split; off: the key alone decides")
    near_dup_threshold: float = Field(
        0.6, gt=0.0, lt=1.0, description="Jaccard similarity the grouping's LSH bands are tuned to (below "
        "dedup's: over-grouping is harmless, under-grouping leaks)")
    ngram: int = Field(5, ge=1, le=64, description="words per shingle of the grouping")
    num_perm: int = Field(128, ge=8, le=4096, description="MinHash permutations of the grouping")
    local_max_pairs: int = Field(1_000_000, ge=0, description="links up to which the grouping's components "
                                 "are computed in the driver (above: distributed shuffles)")

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        if self.eval_size is None and self.eval_fraction is None:
            raise ValueError("give eval_fraction or eval_size")
        return self

    @property
    def needs_counts(self) -> bool:
        return self.eval_size is not None or self.stratify_by is not None


def key_values(table: pa.Table, key: str) -> pa.ChunkedArray | pa.Array:
    """The split key of every row, as strings (see the module docstring for ``auto``); the grouped key
    where the near-duplicate grouping set one."""
    if GROUP_KEY in table.column_names:
        return table.column(GROUP_KEY)
    names = AUTO_KEYS if key == "auto" else (key, "id")
    cols = [table.column(n).cast(pa.string()) for n in names if n in table.column_names]
    if not cols:
        raise KeyError(f"split key column {key!r} not in the table (columns: {table.column_names})")
    return pc.coalesce(*cols) if len(cols) > 1 else cols[0]


def key_hashes(table: pa.Table, key: str, seed: int) -> np.ndarray:
    """uint64 seeded XXH3 hash of each row's key (a null key hashes as the empty string)."""
    values = pc.fill_null(key_values(table, key), "").cast(pa.binary()).to_pylist()
    digest = xxhash.xxh3_64_intdigest
    return np.fromiter((digest(v, seed=seed) for v in values), dtype=np.uint64, count=len(values))


def _labels(is_eval: np.ndarray) -> pa.Array:
    return pa.array(np.where(is_eval, EVAL, TRAIN), type=pa.string())


def split_by_fraction(table: pa.Table, cfg: SplitConfig, seed: int) -> pa.Table:
    """The count-free rule: ``eval`` iff hash < fraction * 2**64."""
    frac = float(cfg.eval_fraction or 0.0)
    cut = np.uint64(min(int(frac * 2.0**64), 2**64 - 1))
    hashes = key_hashes(table, cfg.key, seed)
    is_eval = hashes < cut if frac < 1.0 else np.ones(len(hashes), dtype=bool)
    return set_column(table, SPLIT, _labels(is_eval))


def _strata(table: pa.Table, column: str | None) -> list[str]:
    if column is None:
        return [""] * table.num_rows
    if column not in table.column_names:
        raise KeyError(f"stratify_by column {column!r} not in the table (columns: {table.column_names})")
    return [_NULL_STRATUM if v is None else str(v) for v in table.column(column).cast(pa.string()).to_pylist()]


def hash_rows(table: pa.Table, cfg: SplitConfig, seed: int) -> pa.Table:
    """First pass: the (hash, stratum) of each row, the only thing the driver collects."""
    return pa.table({_H: pa.array(key_hashes(table, cfg.key, seed), pa.uint64()),
                     _S: pa.array(_strata(table, cfg.stratify_by), pa.string())})


def _quotas(sizes: np.ndarray, cfg: SplitConfig) -> np.ndarray:
    """Eval documents per stratum: the fraction of each, or eval_size shared by largest remainder."""
    total = int(sizes.sum())
    if cfg.eval_size is not None:
        want = min(cfg.eval_size, total)
        exact = sizes * (want / total) if total else sizes * 0.0
        base = np.floor(exact).astype(np.int64)
        left = want - int(base.sum())
        order = np.lexsort((np.arange(len(sizes)), -(exact - base)))  # largest remainder, then first
        base[order[:left]] += 1
        return base
    exact = sizes * float(cfg.eval_fraction)
    return (np.floor(exact) if cfg.rounding == "floor" else np.floor(exact + 0.5)).astype(np.int64)


def plan_counts(hashes: np.ndarray, strata: list[str] | np.ndarray, cfg: SplitConfig) -> dict[str, Any]:
    """From every row's (hash, stratum): a per-stratum hash cut so each stratum's eval fits its quota.

    Groups are taken in hash order; one too large for what is left of its stratum's quota (a big
    near-duplicate component) stays in train and the next ones are tried, so eval's size follows the
    quota whatever the group sizes. Returns ``{"cuts": {stratum: cut}, "owner": {hash: stratum},
    "train": [hash, ...]}``: a row is eval iff its key hash is below the cut of its group's stratum and
    not one of the skipped ``train`` groups; ``owner`` names that stratum for the (rare) groups whose
    members lie in several strata.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    names, codes = np.unique(np.asarray(strata, dtype=object).astype(str), return_inverse=True)
    cuts: dict[str, int] = {}
    owner: dict[int, str] = {}
    skipped: list[int] = []
    if len(hashes) == 0:
        return {"cuts": cuts, "owner": owner, "train": skipped}
    order = np.lexsort((codes, hashes))
    h_sorted, c_sorted = hashes[order], codes[order]
    starts = np.flatnonzero(np.r_[True, h_sorted[1:] != h_sorted[:-1]])
    group_hash = h_sorted[starts]
    group_size = np.diff(np.r_[starts, len(h_sorted)])
    group_code = c_sorted[starts]  # rows are sorted by code within a hash: the smallest stratum owns it
    mixed = np.flatnonzero(c_sorted[np.r_[starts[1:], len(h_sorted)] - 1] != group_code)
    owner = {int(group_hash[g]): str(names[group_code[g]]) for g in mixed}
    sizes = np.bincount(codes, minlength=len(names))
    quotas = _quotas(sizes, cfg)
    for code, name in enumerate(names):
        mine = np.flatnonzero(group_code == code)  # groups in hash order
        left, taken = int(quotas[code]), 0
        while taken < len(mine) and left > 0:
            size = int(group_size[mine[taken]])
            if size > left:
                skipped.append(int(group_hash[mine[taken]]))
            else:
                left -= size
            taken += 1
        cuts[str(name)] = int(group_hash[mine[taken]]) if taken < len(mine) else 2**64
    return {"cuts": cuts, "owner": owner, "train": skipped}


def split_by_plan(table: pa.Table, cfg: SplitConfig, seed: int, plan: dict[str, Any]) -> pa.Table:
    """Second pass: label each row with the cut of its group's stratum."""
    hashes = key_hashes(table, cfg.key, seed)
    strata = _strata(table, cfg.stratify_by)
    owner, cuts, skipped = plan["owner"], plan["cuts"], set(plan["train"])
    is_eval = np.fromiter(
        (h < cuts.get(owner.get(h, s), 0) and h not in skipped for h, s in zip(hashes.tolist(), strata)),
        dtype=bool, count=len(strata),
    )
    return set_column(table, SPLIT, _labels(is_eval))


def _grouping(cfg: SplitConfig, seed: int) -> dict[str, Any]:
    return {"threshold": cfg.near_dup_threshold, "ngram": cfg.ngram, "num_perm": cfg.num_perm, "seed": seed}


def _finish(table: pa.Table) -> pa.Table:
    """The key the split hashed, kept as ``split_group``."""
    if GROUP_KEY not in table.column_names:
        return table
    return set_column(table.drop_columns([GROUP_KEY]), SPLIT_GROUP, table.column(GROUP_KEY))


def split_tables(tables: Iterable[pa.Table], cfg: SplitConfig, seed: int) -> list[pa.Table]:
    """Split in-memory tables with exactly the logic ``Split.run`` applies to a dataset."""
    seed = cfg.seed if cfg.seed is not None else seed
    tables = list(tables)
    grouped = cfg.group_near_duplicates and bool(tables) and all("text" in t.column_names for t in tables)
    if grouped:
        whole = pa.concat_tables(tables, promote_options="permissive")
        grouped = group_table(whole, key_values(whole, cfg.key), **_grouping(cfg, seed))
        out, start = [], 0
        for t in tables:
            out.append(set_column(t, GROUP_KEY, grouped.slice(start, t.num_rows)))
            start += t.num_rows
        tables = out
    return [_finish(t) for t in _split(tables, cfg, seed, counted=grouped)]


def _split(tables: list[pa.Table], cfg: SplitConfig, seed: int, *, counted: bool) -> list[pa.Table]:
    if not (cfg.needs_counts or counted):
        return [split_by_fraction(t, cfg, seed) for t in tables]
    rows = [hash_rows(t, cfg, seed) for t in tables]
    hashes = np.concatenate([r.column(_H).to_numpy() for r in rows]) if rows else np.zeros(0, np.uint64)
    strata = [s for r in rows for s in r.column(_S).to_pylist()]
    plan = plan_counts(hashes, strata, cfg)
    return [split_by_plan(t, cfg, seed, plan) for t in tables]


class Split(GlobalStage[SplitConfig]):
    """Write ``split`` = train / eval by a seeded hash of the key; see the module docstring."""

    name: ClassVar[str] = "split"
    writes: ClassVar[tuple[Column, ...]] = (
        Column(SPLIT, "train or eval"),
        Column(SPLIT_GROUP, "the key the split hashed: the smallest split key of the document's near-duplicate "
                            "group (its own key when it has no near-duplicate)"),
    )

    def run(self, ds: Any, *, seed: int = 0) -> Any:
        cfg = self.config
        seed = cfg.seed if cfg.seed is not None else seed
        schema = ds.schema()
        grouped = cfg.group_near_duplicates and schema is not None and "text" in schema.names
        if grouped:
            ds = group_dataset(ds, key_fn=partial(key_values, key=cfg.key), local_max_pairs=cfg.local_max_pairs,
                               **_grouping(cfg, seed))
        return self._split(ds, cfg, seed, counted=grouped).map_batches(_finish, batch_format="pyarrow")

    @staticmethod
    def _split(ds: Any, cfg: SplitConfig, seed: int, *, counted: bool) -> Any:
        """``counted``: plan the eval groups from every row's hash (near-duplicate groups have sizes)."""
        if not (cfg.needs_counts or counted):
            return ds.map_batches(split_by_fraction, batch_format="pyarrow", fn_kwargs={"cfg": cfg, "seed": seed})
        hashes, strata = [], []
        collected = ds.map_batches(hash_rows, batch_format="pyarrow", fn_kwargs={"cfg": cfg, "seed": seed})
        for batch in collected.iter_batches(batch_format="pyarrow", batch_size=None):
            hashes.append(batch.column(_H).to_numpy())
            strata.extend(batch.column(_S).to_pylist())
        all_hashes = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
        plan = plan_counts(all_hashes, strata, cfg)
        return ds.map_batches(split_by_plan, batch_format="pyarrow",
                              fn_kwargs={"cfg": cfg, "seed": seed, "plan": plan})
