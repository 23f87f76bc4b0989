"""Decontaminate train against eval (stage ``eval_overlap``): the eval split is the benchmark.

Runs after ``split``. The n-grams of the eval documents (``ngram`` words, normalized and hashed exactly as
``decontaminate`` does with benchmark files) are collected once into a sorted array, broadcast through
Ray's object store, and every train document counts its n-gram positions found there. A train document
with at least ``min_matches`` such positions shares text with eval that the near-duplicate grouping did
not catch (a quoted paragraph, a shared code block): ``mode: drop`` (default) drops it with reason
``eval_overlap``, ``mode: flag`` keeps it. ``eval_overlap_ngrams`` holds the count (0 on eval documents).

``sample`` > 1 keeps only the n-grams whose hash is divisible by it, on both sides alike (a shared n-gram
is kept on both or on neither), dividing the memory of the eval set by about ``sample`` for huge eval
splits; an overlap of k n-grams is then missed with probability about (1 - 1/sample)^k.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curator.stages.base import Column, GlobalStage, StageConfig
from curator.stages.decontaminate import ngram_hashes
from curator.table import set_column, set_drops

REASON = "eval_overlap"
COLUMN = "eval_overlap_ngrams"
KEEP = ("_rowkey", "id", "split")


class EvalOverlapConfig(StageConfig):
    ngram: int = Field(13, ge=1, le=64, description="words per n-gram")
    mode: Literal["drop", "flag"] = Field("drop", description="drop overlapping train documents, or only count")
    min_matches: int = Field(1, ge=1, description="matching n-gram positions that make a train document overlap")
    sample: int = Field(1, ge=1, description="keep only n-grams whose hash is divisible by this (memory / sample)")


def sampled_hashes(table: pa.Table, cfg: EvalOverlapConfig) -> tuple[np.ndarray, np.ndarray]:
    h, row = ngram_hashes(table.column("text"), cfg.ngram)
    if cfg.sample > 1:
        keep = h % np.uint64(cfg.sample) == 0
        h, row = h[keep], row[keep]
    return h, row


def eval_ngrams(table: pa.Table, *, cfg: EvalOverlapConfig) -> pa.Table:
    """Unique n-gram hashes of a block's eval documents."""
    if table.num_rows == 0 or "split" not in table.column_names:
        return pa.table({"h": pa.array([], pa.uint64())})
    evals = table.filter(pc.equal(table.column("split"), "eval"))
    h, _ = sampled_hashes(evals, cfg)
    return pa.table({"h": pa.array(np.unique(h), pa.uint64())})


def mark(table: pa.Table, eval_set: np.ndarray, cfg: EvalOverlapConfig) -> pa.Table:
    """Count each train row's n-gram positions in ``eval_set`` (sorted); drop or flag the overlapping ones."""
    n = table.num_rows
    counts = np.zeros(n, np.int32)
    is_train = pc.fill_null(pc.not_equal(table.column("split"), "eval"), True).to_numpy(zero_copy_only=False) \
        if "split" in table.column_names else np.ones(n, bool)
    if len(eval_set) and is_train.any():
        h, row = sampled_hashes(table, cfg)
        pos = np.minimum(np.searchsorted(eval_set, h), len(eval_set) - 1)
        hit = (eval_set[pos] == h) & is_train[row]
        counts = np.bincount(row[hit], minlength=n).astype(np.int32)
    table = set_column(table, COLUMN, pa.array(counts, pa.int32()))
    if cfg.mode == "drop":
        table = set_drops(table, np.where(counts >= cfg.min_matches, REASON, None).tolist())
    return table


def overlap_tables(tables: list[pa.Table], cfg: EvalOverlapConfig) -> list[pa.Table]:
    """In memory, the same as ``EvalOverlap.run``."""
    parts = [eval_ngrams(t, cfg=cfg).column("h").to_numpy() for t in tables]
    eval_set = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)
    return [mark(t, eval_set, cfg) for t in tables]


def _mark_ray(table: pa.Table, *, ref: Any, cfg: EvalOverlapConfig) -> pa.Table:
    import ray

    out = mark(table, ray.get(ref), cfg)
    return out.select([c for c in (*KEEP, COLUMN, "drop_reason") if c in out.column_names])


class EvalOverlap(GlobalStage[EvalOverlapConfig]):
    """Drop (or flag) train documents that share a long n-gram with an eval document; after ``split``."""

    name: ClassVar[str] = "eval_overlap"
    writes: ClassVar[tuple[Column, ...]] = (
        Column(COLUMN, "n-gram positions of a train document found in the eval split", thresholds=("min_matches",)),
    )
    drop_reasons: ClassVar[dict[str, str]] = {REASON: "shares at least min_matches n-grams with an eval document"}

    def run(self, ds: Any, *, seed: int = 0) -> Any:
        import ray

        from curator.dedup.shuffle import collect

        cfg = self.config
        schema = ds.schema()
        if schema is None or "split" not in schema.names:
            raise ValueError("eval_overlap needs the split column: put it after the split stage")
        hashes = collect(ds.map_batches(eval_ngrams, batch_format="pyarrow", fn_kwargs={"cfg": cfg}))
        eval_set = np.unique(hashes.column("h").to_numpy()) if hashes is not None else np.zeros(0, np.uint64)
        ref = ray.put(eval_set)
        return ds.map_batches(_mark_ray, batch_format="pyarrow", fn_kwargs={"ref": ref, "cfg": cfg})
