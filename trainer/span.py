"""Span corruption: the sequence-to-sequence task the encoder-decoder trains on, made from packed tokens.

A window of ``L`` tokens of the curated text has ``round(L * noise_density)`` of them masked, in
``n_spans`` spans (mean length ``mean_span``). The source is the window with each span replaced by one
sentinel id; the target lists each sentinel followed by the tokens it replaced, then the end-of-text id
(the T5 objective: Raffel et al. 2020). Span counts and lengths are fixed by ``L``, so every example has
the same source and target length and batches need no padding. The decoder reads the target shifted
right behind a start id.

Examples are a pure function of (seed, step, index), like the decoder-only windows, so training resumes
from a step number and N processes see exactly the examples one process sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpanShape:
    window: int  # L: tokens read from the stream per example
    noise: int  # tokens masked
    spans: int  # spans masked (= sentinels used)

    @property
    def src_len(self) -> int:
        return self.window - self.noise + self.spans

    @property
    def tgt_len(self) -> int:
        return self.noise + self.spans + 1


def span_shape(window: int, noise_density: float = 0.15, mean_span: float = 3.0) -> SpanShape:
    if not 0.0 < noise_density < 1.0:
        raise ValueError(f"noise_density must be in (0, 1), got {noise_density}")
    noise = min(max(1, round(window * noise_density)), window - 1)
    spans = min(max(1, round(noise / mean_span)), noise, window - noise)
    return SpanShape(window, noise, spans)


def _composition(total: int, parts: int, rng: np.random.Generator) -> np.ndarray:
    """total split into `parts` positive integers, uniformly among all such splits."""
    cuts = np.sort(rng.choice(np.arange(1, total), parts - 1, replace=False)) if parts > 1 else np.zeros(0, int)
    return np.diff(np.concatenate([[0], cuts, [total]]))


def corrupt(tokens: np.ndarray, shape: SpanShape, sentinel0: int, eot: int,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(source, target) int64 arrays of one window (see the module docstring)."""
    if len(tokens) != shape.window:
        raise ValueError(f"window of {len(tokens)} tokens, expected {shape.window}")
    noise_lens = _composition(shape.noise, shape.spans, rng)
    keep_lens = _composition(shape.window - shape.noise, shape.spans, rng)  # each span follows kept text
    src, tgt, at = [], [], 0
    for i, (k, n) in enumerate(zip(keep_lens, noise_lens, strict=True)):
        src.append(tokens[at:at + k])
        src.append([sentinel0 + i])
        tgt.append([sentinel0 + i])
        tgt.append(tokens[at + k:at + k + n])
        at += k + n
    tgt.append([eot])
    return np.concatenate(src).astype(np.int64), np.concatenate(tgt).astype(np.int64)


class SpanTask:
    """Span-corruption batches (src, tgt_in, tgt_out) from train/eval token arrays."""

    def __init__(self, train: np.ndarray, eval_tokens: np.ndarray, window: int, seed: int, sentinel0: int,
                 eot: int, start: int, noise_density: float = 0.15, mean_span: float = 3.0) -> None:
        self.shape = span_shape(window, noise_density, mean_span)
        if len(train) < window + 1:
            raise ValueError(f"{len(train)} tokens are too few for windows of {window}")
        self.train, self.eval_tokens, self.seed = train, eval_tokens, seed
        self.sentinel0, self.eot, self.start = sentinel0, eot, start

    @property
    def tokens_per_example(self) -> int:
        return self.shape.src_len + self.shape.tgt_len

    def _examples(self, tokens: np.ndarray, starts: np.ndarray, keys: list) -> tuple[np.ndarray, ...]:
        L = self.shape.window
        src, tgt = zip(*(corrupt(tokens[s:s + L].astype(np.int64), self.shape, self.sentinel0, self.eot,
                                 np.random.default_rng(k)) for s, k in zip(starts, keys, strict=True)),
                       strict=True)
        tgt_out = np.stack(tgt)
        tgt_in = np.concatenate([np.full((len(tgt_out), 1), self.start, np.int64), tgt_out[:, :-1]], axis=1)
        return np.stack(src), tgt_in, tgt_out

    def batch(self, step: int, batch_size: int, micro: int = 0, accum: int = 1, rank: int = 0,
              world: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One micro-batch of one rank: slice ``micro * world + rank`` of step's global batch."""
        if not (0 <= micro < accum and 0 <= rank < world):
            raise ValueError(f"micro {micro}/{accum} or rank {rank}/{world} out of range")
        n = batch_size * accum * world
        rng = np.random.default_rng([self.seed, step])
        starts = rng.integers(0, len(self.train) - self.shape.window, size=n, endpoint=True)
        j = micro * world + rank
        idx = range(j * batch_size, (j + 1) * batch_size)
        return self._examples(self.train, starts[list(idx)], [[self.seed, 0, step, i] for i in idx])

    def eval_batches(self, batch_size: int, max_batches: int, rank: int = 0,
                     world: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Consecutive non-overlapping windows of the eval tokens, corrupted by a fixed rule per window."""
        L = self.shape.window
        n_win = len(self.eval_tokens) // L
        if n_win == 0:
            raise ValueError(f"eval split has {len(self.eval_tokens)} tokens: fewer than one window of {L}")
        total = min(n_win, max_batches * batch_size * world) if max_batches > 0 else n_win
        mine = np.arange(rank, total, world)
        for s in range(0, len(mine), batch_size):
            w = mine[s:s + batch_size]
            yield self._examples(self.eval_tokens, w * L, [[self.seed, 1, int(i)] for i in w])


SENTINEL_TEXT = "<extra_id_{}>"
_SENTINEL_RE = re.compile(r"<extra_id_(\d+)>")


def encode_with_sentinels(tok, text: str, sentinel0: int) -> list[int]:
    """Token ids of text where each ``<extra_id_k>`` marker becomes sentinel k."""
    ids, at = [], 0
    for m in _SENTINEL_RE.finditer(text):
        if m.start() > at:
            ids += tok.encode(text[at:m.start()], add_special_tokens=False).ids
        ids.append(sentinel0 + int(m.group(1)))
        at = m.end()
    if at < len(text):
        ids += tok.encode(text[at:], add_special_tokens=False).ids
    return ids


def decode_with_sentinels(tok, ids: list[int], sentinel0: int) -> str:
    """Text of ids, sentinels written as ``<extra_id_k>``."""
    out, run = [], []
    for i in ids:
        if i >= sentinel0:
            out.append(tok.decode(run))
            out.append(SENTINEL_TEXT.format(i - sentinel0))
            run = []
        else:
            run.append(i)
    out.append(tok.decode(run))
    return "".join(out)
