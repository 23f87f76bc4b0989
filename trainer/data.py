"""Packed token shards from a curation job's Parquet output, and the windows the trainer reads.

Input: ``<out>/train/*.parquet`` and ``<out>/eval/*.parquet`` (columns ``id``, ``text``) and
``<out>/manifest.json``. Before the split stage exists, ``<out>/data/*.parquet`` is split here: a
document goes to eval when a hash of its ``id`` falls under ``eval_fraction`` (deterministic).

Output (``prepare``), in a work folder: ``tokenizer.json`` (trained unless given), ``train.bin`` and
``eval.bin`` (all tokens, each document followed by the EOT token, uint16 when the vocabulary fits,
else uint32) and ``meta.json`` (dtype, token counts, manifest and tokenizer hashes). Tokenizing runs in
parallel over Parquet row groups: Ray Data when Ray is connected (``trainer.ray_train``, the
only module that imports Ray), else a process pool.

Training reads random windows of ``block_size + 1`` tokens from the memory-mapped array. The windows of
optimizer step s are a pure function of (seed, s), so the data position to resume from is one integer,
and N processes read exactly the windows one process reads at the same global batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from trainer.tokenizer import EOT, eot_id, file_hash, load_tokenizer, train_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """Where one split's documents come from: Parquet files, and the holdout rule when split here."""

    files: tuple[str, ...]
    holdout: str | None = None  # None: take all; "train"/"eval": side of the id-hash split to keep
    eval_fraction: float = 0.0


def find_sources(out_dir: str | Path, eval_fraction: float = 0.01) -> dict[str, Source]:
    """The train and eval sources of a finished job's folder (see the module docstring)."""
    out = Path(out_dir)
    listed = _manifest_files(out)
    if listed is not None:
        train, evals, data = listed.get("train", []), listed.get("eval", []), listed.get("data", [])
    else:
        train = sorted(str(p) for p in (out / "train").glob("*.parquet"))
        evals = sorted(str(p) for p in (out / "eval").glob("*.parquet"))
        data = sorted(str(p) for p in (out / "data").glob("*.parquet"))
    if train:
        if not evals:
            raise FileNotFoundError(f"{out}/train has Parquet files but {out}/eval has none")
        return {"train": Source(tuple(train)), "eval": Source(tuple(evals))}
    if not data:
        raise FileNotFoundError(f"no Parquet files under {out}/train, {out}/eval or {out}/data")
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1) to hold out eval data, got {eval_fraction}")
    return {
        "train": Source(tuple(data), "train", eval_fraction),
        "eval": Source(tuple(data), "eval", eval_fraction),
    }


def _manifest_files(out: Path) -> dict[str, list[str]] | None:
    """The files a finished curator output's manifest lists, by subset (only those exist for a reader);
    None for a folder curator did not write. An unfinished curator output (state, no manifest) is refused."""
    manifest = out / "manifest.json"
    if not manifest.is_file():
        if (out / "_curator").exists():
            raise FileNotFoundError(f"{out} is an unfinished curator output (no manifest.json): finish or resume "
                                    "the run first")
        return None
    listed = json.loads(manifest.read_text()).get("files")
    if not isinstance(listed, list):  # not a curator manifest (a hand-made folder)
        return None
    files: dict[str, list[str]] = {}
    for f in listed:
        files.setdefault(f["subset"], []).append(str(out / f["path"]))
    return files


def manifest_hash(out_dir: str | Path) -> str | None:
    """sha256 of ``<out>/manifest.json``; None (with a warning) when the folder has none."""
    p = Path(out_dir) / "manifest.json"
    if not p.is_file():
        log.warning("no manifest.json in %s: checkpoints will record no dataset hash", out_dir)
        return None
    return file_hash(p)


def in_eval(ids: list[str], fraction: float) -> np.ndarray:
    """Deterministic holdout: True where blake2b(id) as a fraction of 2**64 is under fraction."""
    h = [int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "little") for i in ids]
    return np.asarray(h, dtype=np.float64) / 2.0**64 < fraction


def _texts_of(table, src: Source) -> tuple[list[str], int]:
    """The usable texts of a table for a source, and how many rows were skipped (null/empty text)."""
    texts = table.column("text").to_pylist()
    if src.holdout is not None:
        ev = in_eval([str(i) for i in table.column("id").to_pylist()], src.eval_fraction)
        keep = ev if src.holdout == "eval" else ~ev
        texts = [t for t, k in zip(texts, keep, strict=True) if k]
    good = [t for t in texts if isinstance(t, str) and t]
    return good, len(texts) - len(good)


def iter_texts(src: Source) -> Iterator[str]:
    """All usable texts of a source, in file and row order."""
    for f in src.files:
        pf = pq.ParquetFile(f)
        for rg in range(pf.num_row_groups):
            yield from _texts_of(_read_rg(pf, rg, src), src)[0]


def _read_rg(pf: pq.ParquetFile, rg: int, src: Source):
    cols = ["text", "id"] if src.holdout is not None else ["text"]
    missing = [c for c in cols if c not in pf.schema_arrow.names]
    if missing:
        raise ValueError(f"{pf.metadata} lacks column(s) {missing}")
    return pf.read_row_group(rg, columns=cols)


def encode_texts(tok, texts: list[str], eot: int) -> np.ndarray:
    """Token ids of texts, each followed by eot, as one uint32 array."""
    if not texts:
        return np.zeros(0, dtype=np.uint32)
    encs = tok.encode_batch(texts, add_special_tokens=False)
    lens = np.fromiter((len(e.ids) + 1 for e in encs), dtype=np.int64, count=len(encs))
    out = np.empty(int(lens.sum()), dtype=np.uint32)
    ends = np.cumsum(lens)
    starts = ends - lens
    for e, s, end in zip(encs, starts, ends, strict=True):
        out[s:end - 1] = e.ids
    out[ends - 1] = eot
    return out


def encode_task(args: tuple[str, int, Source, str, str]) -> tuple[np.ndarray, int]:
    """Worker: tokenize one row group of one file."""
    path, rg, src, tok_path, eot = args
    tok = load_tokenizer(tok_path)
    table = _read_rg(pq.ParquetFile(path), rg, src)
    texts, skipped = _texts_of(table, src)
    return encode_texts(tok, texts, eot_id(tok, eot)), skipped


def _tasks(src: Source, tok_path: str, eot: str) -> list[tuple]:
    return [(f, rg, src, tok_path, eot) for f in src.files for rg in range(pq.ParquetFile(f).num_row_groups)]


def _ray_connected() -> bool:
    """Whether this process is connected to Ray (never imports Ray: not imported means not connected)."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def tokenize_source(src: Source, tok_path: str | Path, dest: str | Path, dtype: np.dtype,
                    workers: int = 0, backend: str = "auto", eot: str = EOT) -> dict:
    """Tokenize a source into one flat token file at dest (written to a temp name, then renamed)."""
    if backend == "auto":
        backend = "ray" if _ray_connected() else "pool"
    dest = Path(dest)
    tmp = dest.with_suffix(dest.suffix + ".tmp")
    n_tokens = n_skipped = 0
    with open(tmp, "wb") as f:
        for arr, skipped in _encoded_chunks(src, str(tok_path), workers, backend, eot):
            if arr.size and int(arr.max()) > np.iinfo(dtype).max:
                raise ValueError(f"token id {int(arr.max())} does not fit {np.dtype(dtype).name}")
            f.write(arr.astype(dtype, copy=False).tobytes())
            n_tokens += arr.size
            n_skipped += skipped
    os.replace(tmp, dest)
    if n_skipped:
        log.warning("%s: skipped %d rows with empty or null text", dest.name, n_skipped)
    return {"tokens": n_tokens, "skipped_rows": n_skipped, "backend": backend}


def _encoded_chunks(src: Source, tok_path: str, workers: int, backend: str,
                    eot: str) -> Iterator[tuple[np.ndarray, int]]:
    tasks = _tasks(src, tok_path, eot)
    if backend == "ray":
        from trainer.ray_train import ray_chunks  # the trainer's only Ray module

        yield from ray_chunks(tasks, workers)
        return
    if backend != "pool":
        raise ValueError(f"tokenize backend must be auto, ray or pool, not {backend!r}")
    workers = workers or min(len(tasks), os.cpu_count() or 1)
    if workers <= 1 or len(tasks) <= 1:
        for t in tasks:
            yield encode_task(t)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as ex:
        yield from ex.map(encode_task, tasks)  # map keeps task order: deterministic output


def prepare(out_dir: str | Path, work_dir: str | Path, *, tokenizer: str | Path | None = None,
            vocab_size: int = 8192, eval_fraction: float = 0.01, workers: int = 0,
            backend: str = "auto", eot: str = EOT) -> dict:
    """Tokenizer + packed train/eval token files for a job's output; reuse them when already made.

    Returns the meta dict (also written to ``<work_dir>/meta.json``).
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    sources = find_sources(out_dir, eval_fraction)
    mhash = manifest_hash(out_dir)
    tok_path = work / "tokenizer.json"
    if tokenizer is not None:
        given = load_tokenizer(tokenizer)
        eot_id(given, eot)
        given.save(str(tok_path))
    elif not tok_path.exists():
        log.info("training a %d-token byte-level BPE on %s", vocab_size, out_dir)
        train_tokenizer(iter_texts(sources["train"]), vocab_size, tok_path)
    tok = load_tokenizer(tok_path)
    thash = file_hash(tok_path)
    meta_path = work / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("manifest_hash") == mhash and meta.get("tokenizer_hash") == thash and all(
            (work / f"{s}.bin").exists() for s in ("train", "eval")
        ):
            return meta
    vocab = tok.get_vocab_size()
    dtype = np.dtype(np.uint16 if vocab <= 65536 else np.uint32)
    meta = {
        "dtype": dtype.name, "vocab_size": vocab, "eot_id": eot_id(tok, eot),
        "manifest_hash": mhash, "tokenizer_hash": thash, "source": str(out_dir),
        "split_here": sources["train"].holdout is not None, "eval_fraction": eval_fraction,
    }
    for split, src in sources.items():
        meta[split] = tokenize_source(src, tok_path, work / f"{split}.bin", dtype, workers, backend, eot)
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta


def open_tokens(path: str | Path, dtype: str | np.dtype) -> np.ndarray:
    """The token file as a read-only memory map."""
    return np.memmap(path, dtype=np.dtype(dtype), mode="r")


class Windows:
    """Random (x, y) windows of block_size + 1 tokens, a pure function of (seed, step).

    Optimizer step s reads ``global_batch`` windows; micro-batch m of rank r (of ``world``) takes the
    slice number ``m * world + r`` of ``batch_size`` windows. So one process with gradient accumulation
    and N processes with less of it see the same windows at every step.
    """

    def __init__(self, tokens: np.ndarray, block_size: int, seed: int = 0) -> None:
        if len(tokens) < block_size + 2:
            raise ValueError(f"{len(tokens)} tokens are too few for windows of {block_size + 1}")
        self.tokens, self.block_size, self.seed = tokens, block_size, seed

    def starts(self, step: int, n: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, step])
        return rng.integers(0, len(self.tokens) - self.block_size - 1, size=n, endpoint=True)

    def batch(self, step: int, batch_size: int, micro: int = 0, accum: int = 1, rank: int = 0,
              world: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) int64 arrays (batch_size, block_size) for one micro-batch of one rank."""
        if not (0 <= micro < accum and 0 <= rank < world):
            raise ValueError(f"micro {micro}/{accum} or rank {rank}/{world} out of range")
        j = micro * world + rank
        starts = self.starts(step, batch_size * accum * world)[j * batch_size:(j + 1) * batch_size]
        w = self.tokens[starts[:, None] + np.arange(self.block_size + 1)].astype(np.int64)
        return w[:, :-1], w[:, 1:]


class LMTask:
    """The decoder-only task for the training loop: (x, y) windows for training, eval windows."""

    def __init__(self, train: np.ndarray, eval_tokens: np.ndarray, block_size: int, seed: int) -> None:
        self.windows = Windows(train, block_size, seed)
        self.eval_tokens, self.block_size = eval_tokens, block_size

    @property
    def tokens_per_example(self) -> int:
        return self.block_size

    def batch(self, step: int, batch_size: int, micro: int = 0, accum: int = 1, rank: int = 0,
              world: int = 1) -> tuple[np.ndarray, np.ndarray]:
        return self.windows.batch(step, batch_size, micro, accum, rank, world)

    def eval_batches(self, batch_size: int, max_batches: int, rank: int = 0,
                     world: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return eval_windows(self.eval_tokens, self.block_size, batch_size, max_batches, rank, world)


def eval_windows(tokens: np.ndarray, block_size: int, batch_size: int, max_batches: int,
                 rank: int = 0, world: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Consecutive non-overlapping windows from the start of the eval tokens, dealt out to ranks."""
    n_win = (len(tokens) - 1) // block_size
    if n_win == 0:
        raise ValueError(f"eval split has {len(tokens)} tokens: fewer than one block of {block_size}")
    total = min(n_win, max_batches * batch_size * world) if max_batches > 0 else n_win
    mine = np.arange(rank, total, world)
    for s in range(0, len(mine), batch_size):
        starts = mine[s:s + batch_size] * block_size
        w = tokens[starts[:, None] + np.arange(block_size + 1)].astype(np.int64)
        yield w[:, :-1], w[:, 1:]


def main(argv: list[str] | None = None) -> int:
    """``python -m trainer prepare OUT WORK``: tokenizer + token files, printed meta."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m trainer prepare", description=prepare.__doc__.split("\n")[0])
    ap.add_argument("data", help="a curation job's output folder")
    ap.add_argument("work_dir")
    ap.add_argument("--tokenizer")
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--eval-fraction", type=float, default=0.01)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--backend", default="auto", choices=["auto", "ray", "pool"])
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        meta = prepare(a.data, a.work_dir, tokenizer=a.tokenizer, vocab_size=a.vocab_size,
                       eval_fraction=a.eval_fraction, workers=a.workers, backend=a.backend)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(meta, indent=2))
    return 0
