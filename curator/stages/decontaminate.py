"""Benchmark decontamination by long n-gram overlap (stage ``decontaminate``), as GPT-3 did.

Text of both sides is normalized the same way: lowercased, Unicode punctuation and symbols replaced by
spaces, split on whitespace. Every run of ``ngram`` consecutive words (13 by default) is hashed to 64
bits: each word is hashed once per batch vocabulary (XXH3) and the n-gram hash is a position-weighted
sum of its word hashes, computed with NumPy over the whole batch at once.

The benchmark side is built once per worker (the stage is stateful): every item of every benchmark file
(JSONL, optionally ``.gz``/``.zst``) gives the text of its configured fields (strings, or lists and
objects of strings, e.g. ARC's ``choices`` or HellaSwag's ``endings``), joined in field order; its
n-gram hashes go into one sorted array with the benchmark and line of the first item that produced each.
Items with fewer than ``ngram`` words have no n-gram and cannot match; they are counted and logged.
A line that is not a JSON object is skipped, counted and logged.

A document is contaminated when at least ``min_matches`` of its n-gram positions hit the set
(``np.searchsorted`` over the batch's n-gram hashes). ``mode: drop`` drops it with reason
``contaminated``; ``mode: flag`` keeps it. Either way the columns say what matched:
``contaminated_benchmark`` (the benchmark's name: its ``name`` or the file's stem),
``contaminated_item`` (0-based line number of the first matching item in that file) and
``contaminated_ngrams`` (matching n-gram positions; 0 and nulls for a clean document).
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import BaseModel, ConfigDict, Field

from curator.paths import InputPath
from curator.stages.base import Column, Stage, StageConfig, set_column, set_drops

log = logging.getLogger("curator.decontaminate")
REASON = "contaminated"
COLUMNS = ("contaminated_benchmark", "contaminated_item", "contaminated_ngrams")
DEFAULT_FIELDS = (
    "question", "answer", "prompt", "completion", "canonical_solution", "ctx", "ctx_a", "ctx_b", "endings",
    "choices", "options", "context", "passage", "query", "input", "output", "goal", "sol1", "sol2",
    "sentence", "premise", "hypothesis", "text",
)
_PUNCT = r"[\p{P}\p{S}]+"


def _splitmix64(count: int, state: int = 0x5EED) -> list[int]:
    out = []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) % 2**64
        z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        out.append((z ^ (z >> 31)) | 1)
    return out


# odd 64-bit multipliers, one per n-gram position (fixed: hashes must agree across workers and runs)
_MULT = np.array(_splitmix64(64), dtype=np.uint64)


class BenchmarkFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: InputPath = Field(description="JSONL file (or glob), optionally .gz / .zst")
    name: str | None = Field(None, description="name recorded on matches (default: the file's stem)")
    fields: list[str] | None = Field(None, description="fields whose text is checked (default: the stage's)")


class DecontaminateConfig(StageConfig):
    benchmarks: list[InputPath | BenchmarkFile] = Field(min_length=1, description="benchmark JSONL files")
    ngram: int = Field(13, ge=1, le=64, description="words per n-gram")
    mode: Literal["drop", "flag"] = Field("drop", description="drop: drop contaminated documents (contaminated); "
                                          "flag: keep them, only the columns say what matched")
    min_matches: int = Field(1, ge=1, description="matching n-gram positions that make a document contaminated")
    fields: list[str] = Field(list(DEFAULT_FIELDS), min_length=1, description="fields of a benchmark item whose "
                              "text is checked, joined in this order (a benchmark file may give its own)")


def words_of(texts: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    """Normalized words of each text (GPT-3 style: lowercase, punctuation and symbols removed)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if pa.types.is_large_string(texts.type):
        texts = texts.cast(pa.string())
    norm = pc.replace_substring_regex(pc.utf8_lower(pc.fill_null(texts, "")), _PUNCT, " ")
    return pc.utf8_split_whitespace(norm)


def ngram_hashes(texts: pa.Array | pa.ChunkedArray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n-gram hashes, row of each) for all ``n``-word windows of all texts, in row then position order."""
    words = words_of(texts)
    offsets = words.offsets.to_numpy().astype(np.int64)
    flat = words.flatten()
    if len(flat) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    enc = pc.dictionary_encode(flat)
    digest = xxhash.xxh3_64_intdigest
    vocab = np.fromiter(map(digest, enc.dictionary.cast(pa.binary()).to_pylist()), np.uint64, count=len(enc.dictionary))
    word_h = vocab[enc.indices.to_numpy()]
    n_windows = len(word_h) - n + 1
    if n_windows <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    acc = np.zeros(n_windows, np.uint64)
    for j in range(n):
        acc += word_h[j:j + n_windows] * _MULT[j]  # uint64 arithmetic wraps: a hash mod 2**64
    lengths = np.diff(offsets)
    row = np.repeat(np.arange(len(lengths)), lengths)[:n_windows]
    valid = np.arange(n_windows) + n <= offsets[1:][row]  # window ends inside its own row
    return acc[valid], row[valid]


def _open_text(path: str) -> io.TextIOBase:
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", errors="replace")
    if path.endswith(".zst"):
        import zstandard

        raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"))  # noqa: SIM115 - closed by wrapper
        return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace")
    return open(path, encoding="utf-8-sig", errors="replace")  # noqa: SIM115 - returned to a with block


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def read_items(path: str, fields: list[str], skipped: Counter) -> tuple[list[str], list[int]]:
    """(item texts, 0-based line numbers) of one benchmark JSONL file."""
    texts, lines = [], []
    with _open_text(path) as f:
        for lineno, line in enumerate(f):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                skipped["bad_json"] += 1
                continue
            if not isinstance(record, dict):
                skipped["not_an_object"] += 1
                continue
            parts = [s for name in fields if name in record for s in _strings(record[name])]
            if not parts:
                skipped["no_fields"] += 1
                continue
            texts.append("\n".join(parts))
            lines.append(lineno)
    return texts, lines


class NgramIndex:
    """Sorted benchmark n-gram hashes with the (benchmark, line) of the first item holding each."""

    def __init__(self, benchmarks: list[tuple[str, str, list[str]]], n: int) -> None:
        """``benchmarks``: (name, path, fields) of each file."""
        self.names = [name for name, _, _ in benchmarks]
        self.skipped: Counter = Counter()
        hashes, bench, line = [], [], []
        for b, (name, path, fields) in enumerate(benchmarks):
            texts, lines = read_items(path, fields, self.skipped)
            h, item = ngram_hashes(pa.array(texts, pa.string()), n)
            has_ngram = np.zeros(len(texts), bool)
            has_ngram[item] = True
            self.skipped["shorter_than_ngram"] += int((~has_ngram).sum())
            hashes.append(h)
            bench.append(np.full(len(h), b, np.int32))
            line.append(np.asarray(lines, np.int64)[item])
            log.info("benchmark %s (%s): %d items, %d n-grams", name, path, len(texts), len(h))
        all_h = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
        self.hashes, first = np.unique(all_h, return_index=True)  # keeps the first item of each hash
        self.bench = np.concatenate(bench)[first] if hashes else np.zeros(0, np.int32)
        self.line = np.concatenate(line)[first] if hashes else np.zeros(0, np.int64)
        if +self.skipped:
            log.warning("benchmark items skipped: %s", dict(+self.skipped))

    def __len__(self) -> int:
        return len(self.hashes)

    def lookup(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hit mask, index into the set) of each hash."""
        if len(self.hashes) == 0:
            return np.zeros(len(h), bool), np.zeros(len(h), np.int64)
        idx = np.searchsorted(self.hashes, h)
        idx[idx == len(self.hashes)] = 0
        return self.hashes[idx] == h, idx


def _resolve(cfg: DecontaminateConfig) -> list[tuple[str, str, list[str]]]:
    out = []
    for b in cfg.benchmarks:
        spec = BenchmarkFile(path=b) if isinstance(b, str) else b
        for path in sorted(glob.glob(spec.path)):
            out.append((spec.name or Path(path).name.split(".")[0], path, spec.fields or list(cfg.fields)))
    return out


class Decontaminate(Stage[DecontaminateConfig]):
    """Drop or flag documents sharing a long n-gram with a benchmark item; see the module docstring."""

    name: ClassVar[str] = "decontaminate"
    stateful: ClassVar[bool] = True
    writes: ClassVar[tuple[Column, ...]] = (
        Column(COLUMNS[0], "name of the benchmark a contaminated document matched (null when clean)"),
        Column(COLUMNS[1], "0-based line of the first matching item in that benchmark file (null when clean)"),
        Column(COLUMNS[2], "n-gram positions of the document found in a benchmark (counted on every document)",
               thresholds=("min_matches",)),
    )
    drop_reasons: ClassVar[dict[str, str]] = {REASON: "at least min_matches n-gram positions found in a benchmark "
                                              "(mode: drop)"}

    def __init__(self, config: DecontaminateConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.index = NgramIndex(_resolve(self.config), self.config.ngram)

    def __call__(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        n_rows = table.num_rows
        h, row = ngram_hashes(table.column("text"), cfg.ngram)
        hit, idx = self.index.lookup(h)
        counts = np.bincount(row[hit], minlength=n_rows).astype(np.int32)
        hit_rows, first = np.unique(row[hit], return_index=True)  # first matching position of each row
        first_idx = idx[hit][first]
        bench = np.full(n_rows, None, dtype=object)
        item = np.full(n_rows, None, dtype=object)
        bad = np.zeros(n_rows, bool)
        bad[hit_rows] = counts[hit_rows] >= cfg.min_matches
        names = np.asarray(self.index.names, dtype=object)
        bench[hit_rows] = names[self.index.bench[first_idx]]
        item[hit_rows] = self.index.line[first_idx]
        bench[~bad], item[~bad] = None, None
        table = set_column(table, COLUMNS[0], pa.array(bench.tolist(), pa.string()))
        table = set_column(table, COLUMNS[1], pa.array(item.tolist(), pa.int64()))
        table = set_column(table, COLUMNS[2], pa.array(counts, pa.int32()))
        if cfg.mode == "drop":
            table = set_drops(table, np.where(bad, REASON, None).tolist())
        return table
