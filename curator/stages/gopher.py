"""Gopher / MassiveText heuristics (Rae et al. 2021, "Scaling Language Models", section A.1.1, table A1).

``gopher_quality`` and ``gopher_repetition`` write every signal as a ``quality_gopher_*`` column and drop
a document with the reason of the first rule it fails, in the order listed in each class docstring.
Every threshold is a parameter; ``None`` switches its rule off (the signal is still written).

Words are the tokens of ``text_utils.tokenize`` (spaCy-like: punctuation marks are tokens of their own);
"non-symbol words" are the tokens holding at least one character that is not punctuation. Both stages
inspect at most ``max_inspect_chars`` characters of a document (default 1,000,000): signals of a longer
document are computed on its first ``max_inspect_chars`` characters, so time per document is bounded.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from curator.stages.base import Column, Stage, StageConfig, set_column, set_drops
from curator.stages.text_utils import (
    LINE_SPLIT_RE,
    PARAGRAPH_SPLIT_RE,
    duplicate_stats,
    first_reasons,
    has_alpha,
    is_symbol,
    texts_of,
    tokenize,
)

# The stop words named by the Gopher paper ("the", "be", "to", "of", "and", "that", "have", "with").
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
_INSPECT = Field(1_000_000, ge=1, description="characters of a document the stage inspects (signals of a longer "
                 "one are computed on its first max_inspect_chars characters)")
_Fraction = Annotated[float, Field(ge=0, le=1)]
_NonNegative = Annotated[float, Field(ge=0)]
_NgramSize = Annotated[int, Field(ge=1)]


class GopherQualityConfig(StageConfig):
    min_doc_words: int | None = Field(50, ge=0, description="non-symbol words below which a document is dropped "
                                      "(gopher_short_doc); None: off")
    max_doc_words: int | None = Field(100_000, ge=0, description="non-symbol words above which a document is "
                                      "dropped (gopher_long_doc); None: off")
    min_avg_word_length: float | None = Field(3, ge=0, description="mean non-symbol word length, in characters, "
                                              "below which a document is dropped (gopher_short_words); None: off")
    max_avg_word_length: float | None = Field(10, ge=0, description="mean non-symbol word length, in characters, "
                                              "above which a document is dropped (gopher_long_words); None: off")
    max_symbol_word_ratio: float | None = Field(
        0.1, ge=0, description="# count, and ... / \u2026 count, per token (can exceed 1) above which a document is "
        "dropped (gopher_too_many_hashes, gopher_too_many_ellipsis); None: off")
    max_bullet_lines_ratio: float | None = Field(
        0.9, ge=0, le=1, description="fraction (0-1) of lines starting with a bullet (\u2022 or -) above which a "
        "document is dropped (gopher_too_many_bullets); None: off")
    max_ellipsis_lines_ratio: float | None = Field(
        0.3, ge=0, le=1, description="fraction (0-1) of lines ending in ... or \u2026 above which a document is "
        "dropped (gopher_too_many_end_ellipsis); None: off")
    min_alpha_words_ratio: float | None = Field(
        0.8, ge=0, le=1, description="fraction (0-1) of tokens holding an alphabetic character below which a "
        "document is dropped (gopher_few_alpha_words); None: off")
    min_stop_words: int | None = Field(2, ge=0, description="distinct stop words (of stop_words) below which a "
                                       "document is dropped (gopher_few_stop_words); None: off")
    stop_words: tuple[str, ...] = Field(GOPHER_STOP_WORDS, description="the stop words min_stop_words counts, "
                                        "matched against tokens exactly (case-sensitive)")
    max_inspect_chars: int = _INSPECT


class GopherQuality(Stage[GopherQualityConfig]):
    """Gopher's quality rules: drop documents by word count, word length, symbols, bullets and stop words.

    Rules, in this order (reason: rule):

    - ``gopher_short_doc`` / ``gopher_long_doc``: non-symbol word count outside [50, 100000]
      (column ``quality_gopher_word_count``).
    - ``gopher_short_words`` / ``gopher_long_words``: mean non-symbol word length outside [3, 10]
      (``quality_gopher_mean_word_length``).
    - ``gopher_too_many_hashes`` / ``gopher_too_many_ellipsis``: ``#`` count, or ``...`` + ``…`` count, per
      word above 0.1 (``quality_gopher_hash_ratio``, ``quality_gopher_ellipsis_ratio``).
    - ``gopher_too_many_bullets``: more than 90% of lines start with a bullet (``•`` or ``-``)
      (``quality_gopher_bullet_lines_ratio``).
    - ``gopher_too_many_end_ellipsis``: more than 30% of lines end with an ellipsis
      (``quality_gopher_ellipsis_lines_ratio``).
    - ``gopher_few_alpha_words``: fewer than 80% of words hold an alphabetic character
      (``quality_gopher_alpha_words_ratio``).
    - ``gopher_few_stop_words``: fewer than 2 distinct stop words (``quality_gopher_stop_words``).
    """

    name: ClassVar[str] = "gopher_quality"
    writes: ClassVar[tuple[Column, ...]] = (
        Column("quality_gopher_word_count", "non-symbol words", thresholds=("min_doc_words", "max_doc_words")),
        Column("quality_gopher_mean_word_length", "mean non-symbol word length, in characters (0 without one)",
               thresholds=("min_avg_word_length", "max_avg_word_length")),
        Column("quality_gopher_hash_ratio", "# count per token", thresholds=("max_symbol_word_ratio",)),
        Column("quality_gopher_ellipsis_ratio", "... and \u2026 count per token",
               thresholds=("max_symbol_word_ratio",)),
        Column("quality_gopher_bullet_lines_ratio", "fraction of lines starting with a bullet (\u2022 or -)",
               thresholds=("max_bullet_lines_ratio",)),
        Column("quality_gopher_ellipsis_lines_ratio", "fraction of lines ending in ... or \u2026",
               thresholds=("max_ellipsis_lines_ratio",)),
        Column("quality_gopher_alpha_words_ratio", "fraction of tokens holding an alphabetic character",
               thresholds=("min_alpha_words_ratio",)),
        Column("quality_gopher_stop_words", "distinct stop words (of stop_words) among the tokens",
               thresholds=("min_stop_words",)),
    )
    drop_reasons: ClassVar[dict[str, str]] = {
        "gopher_short_doc": "fewer non-symbol words than min_doc_words",
        "gopher_long_doc": "more non-symbol words than max_doc_words",
        "gopher_short_words": "mean word length below min_avg_word_length",
        "gopher_long_words": "mean word length above max_avg_word_length",
        "gopher_too_many_hashes": "# per token above max_symbol_word_ratio",
        "gopher_too_many_ellipsis": "ellipses per token above max_symbol_word_ratio",
        "gopher_too_many_bullets": "fraction of bullet lines above max_bullet_lines_ratio",
        "gopher_too_many_end_ellipsis": "fraction of lines ending in an ellipsis above max_ellipsis_lines_ratio",
        "gopher_few_alpha_words": "fraction of tokens with a letter below min_alpha_words_ratio",
        "gopher_few_stop_words": "fewer distinct stop words than min_stop_words",
    }

    def __init__(self, config: StageConfig | None = None, **params) -> None:
        super().__init__(config, **params)
        self._stop = frozenset(self.config.stop_words)

    def signals(self, text: str) -> tuple[int, float, float, float, float, float, float, int]:
        """(word count, mean word length, hash ratio, ellipsis ratio, bullet-line ratio,
        ellipsis-line ratio, alpha-word ratio, distinct stop words) of one text."""
        tokens = tokenize(text)
        n_tokens = len(tokens)
        words = [t for t in tokens if not is_symbol(t)]
        n_words = len(words)
        mean_len = sum(map(len, words)) / n_words if n_words else 0.0
        per = n_tokens or 1  # no tokens: every count below is 0
        hashes = text.count("#") / per
        ellipses = (text.count("...") + text.count("\u2026")) / per
        lines = text.splitlines() or [""]
        bullets = sum(1 for ln in lines if ln.lstrip().startswith(("\u2022", "-"))) / len(lines)
        end_ell = sum(1 for ln in lines if ln.rstrip().endswith(("...", "\u2026"))) / len(lines)
        alpha = sum(1 for t in tokens if has_alpha(t)) / per
        stops = len(self._stop.intersection(tokens))
        return n_words, mean_len, hashes, ellipses, bullets, end_ell, alpha, stops

    def __call__(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        rows = [self.signals(t) for t in texts_of(table, cfg.max_inspect_chars)]
        cols = np.array(rows, dtype=np.float64).reshape(len(rows), 8).T
        words, mean_len, hashes, ellipses, bullets, end_ell, alpha, stops = cols
        names = ("word_count", "mean_word_length", "hash_ratio", "ellipsis_ratio", "bullet_lines_ratio",
                 "ellipsis_lines_ratio", "alpha_words_ratio", "stop_words")
        for name, col in zip(names, cols, strict=True):
            is_count = name in ("word_count", "stop_words")
            table = set_column(table, f"quality_gopher_{name}", col.astype(np.int64) if is_count else col)

        def rule(threshold, fn):
            return None if threshold is None else fn(threshold)

        reasons = first_reasons(table.num_rows, [
            ("gopher_short_doc", rule(cfg.min_doc_words, lambda v: words < v)),
            ("gopher_long_doc", rule(cfg.max_doc_words, lambda v: words > v)),
            ("gopher_short_words", rule(cfg.min_avg_word_length, lambda v: mean_len < v)),
            ("gopher_long_words", rule(cfg.max_avg_word_length, lambda v: mean_len > v)),
            ("gopher_too_many_hashes", rule(cfg.max_symbol_word_ratio, lambda v: hashes > v)),
            ("gopher_too_many_ellipsis", rule(cfg.max_symbol_word_ratio, lambda v: ellipses > v)),
            ("gopher_too_many_bullets", rule(cfg.max_bullet_lines_ratio, lambda v: bullets > v)),
            ("gopher_too_many_end_ellipsis", rule(cfg.max_ellipsis_lines_ratio, lambda v: end_ell > v)),
            ("gopher_few_alpha_words", rule(cfg.min_alpha_words_ratio, lambda v: alpha < v)),
            ("gopher_few_stop_words", rule(cfg.min_stop_words, lambda v: stops < v)),
        ])
        return set_drops(table, reasons)


# ------------------------------------------------------------------------------------------------------
# Repetition

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier (golden ratio) for n-gram hashing


def _ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """64-bit polynomial hash of every n-gram of the token-id array (wrap-around arithmetic)."""
    m = len(ids) - n + 1
    h = ids[:m].copy()
    for k in range(1, n):
        h = h * _MIX + ids[k : k + m]
    return h


def _sorted_groups(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(stable argsort of ``hashes``, boolean "starts a run of equal hashes" over the sorted order)."""
    order = np.argsort(hashes, kind="stable")
    s = hashes[order]
    starts = np.empty(len(s), dtype=bool)
    starts[0] = True
    np.not_equal(s[1:], s[:-1], out=starts[1:])
    return order, starts


def top_ngram_chars(ids: np.ndarray, cum: np.ndarray, n: int) -> int:
    """Characters covered by the most frequent n-gram, counted once per occurrence.

    An n-gram's length is its words joined by single spaces; among equally frequent n-grams the first
    to occur wins. 0 when the text has fewer than ``n`` words.
    """
    if len(ids) < n:
        return 0
    order, starts = _sorted_groups(_ngram_hashes(ids, n))
    bounds = np.flatnonzero(starts)
    counts = np.diff(np.append(bounds, len(order)))
    top = counts.max()
    start = int(order[bounds[counts == top]].min())  # stable sort: a run's first element occurs first
    return int(top) * int(cum[start + n] - cum[start] + n - 1)


def duplicate_ngram_chars(ids: np.ndarray, cum: np.ndarray, n: int) -> int:
    """Characters of n-grams that repeat an earlier one, scanning left to right.

    An n-gram seen before adds its characters (words concatenated) and the scan jumps past it, so
    overlapping repeats are not counted twice; one not seen before is remembered and the scan moves one
    word on. Only positions whose n-gram occurs more than once can change the result, so the scan
    visits just those (found by sorting the hashes).
    """
    m = len(ids) - n + 1
    if m <= 1:
        return 0
    hashes = _ngram_hashes(ids, n)
    order, starts = _sorted_groups(hashes)
    multi = ~starts
    if not multi.any():
        return 0
    multi[:-1] |= multi[1:]  # the first element of every run longer than one
    events = np.sort(order[multi]).tolist()
    hl = hashes.tolist()
    cl = cum.tolist()
    seen: set[int] = set()
    skip_until = repeated = 0
    for i in events:
        if i < skip_until:
            continue
        h = hl[i]
        if h in seen:
            repeated += cl[i + n] - cl[i]
            skip_until = i + n
        else:
            seen.add(h)
    return repeated


class GopherRepetitionConfig(StageConfig):
    max_dup_para_frac: float | None = Field(
        0.30, ge=0, le=1, description="fraction (0-1) of paragraphs (split on 2+ newlines) repeating an earlier one "
        "above which a document is dropped (gopher_dup_para); None: off")
    max_dup_para_char_frac: float | None = Field(
        0.20, ge=0, le=1, description="fraction (0-1) of the text's characters in repeated paragraphs above which a "
        "document is dropped (gopher_dup_para_chars); None: off")
    max_dup_line_frac: float | None = Field(
        0.30, ge=0, le=1, description="fraction (0-1) of lines repeating an earlier one above which a document is "
        "dropped (gopher_dup_line); None: off")
    max_dup_line_char_frac: float | None = Field(
        0.20, ge=0, le=1, description="fraction (0-1) of the text's characters in repeated lines above which a "
        "document is dropped (gopher_dup_line_chars); None: off")
    max_top_ngram_char_frac: dict[_NgramSize, _NonNegative | None] = Field(
        {2: 0.20, 3: 0.18, 4: 0.16}, description="n (words, >= 1) -> largest allowed characters of the most frequent "
        "n-gram times its count, over the text's characters (overlapping occurrences count, so it can exceed 1); "
        "above it a document is dropped (gopher_top_{n}gram); a null value switches that n off")
    max_dup_ngram_char_frac: dict[_NgramSize, _Fraction | None] = Field(
        {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}, description="n (words, >= 1) -> largest allowed "
        "fraction (0-1) of the text's characters in n-grams repeating an earlier one; above it a document is dropped "
        "(gopher_dup_{n}gram); a null value switches that n off")
    max_inspect_chars: int = _INSPECT


class GopherRepetition(Stage[GopherRepetitionConfig]):
    """Gopher's repetition rules: drop documents with repeated paragraphs, lines or word n-grams.

    Rules, in this order (reason: rule; fractions are of the text's characters):

    - ``gopher_empty``: empty text.
    - ``gopher_dup_para`` / ``gopher_dup_para_chars``: paragraphs (split on 2+ newlines) that repeat an
      earlier one, as a fraction of paragraphs (> 0.30) and of characters (> 0.20).
    - ``gopher_dup_line`` / ``gopher_dup_line_chars``: the same for lines (> 0.30, > 0.20).
    - ``gopher_top_{n}gram``: characters of the most frequent n-gram times its count, n = 2, 3, 4
      (> 0.20, 0.18, 0.16).
    - ``gopher_dup_{n}gram``: characters of repeated n-grams (``duplicate_ngram_chars``), n = 5..10
      (> 0.15, 0.14, 0.13, 0.12, 0.11, 0.10).

    Columns ``quality_gopher_dup_para_frac``, ``..._dup_para_char_frac``, ``..._dup_line_frac``,
    ``..._dup_line_char_frac``, ``quality_gopher_top_{n}gram_frac``, ``quality_gopher_dup_{n}gram_frac``.
    N-grams are compared by 64-bit hashes of token ids (numpy), never as joined strings.
    """

    name: ClassVar[str] = "gopher_repetition"
    writes: ClassVar[tuple[Column, ...]] = (
        Column("quality_gopher_dup_para_frac", "fraction of paragraphs repeating an earlier one",
               thresholds=("max_dup_para_frac",)),
        Column("quality_gopher_dup_para_char_frac", "fraction of the text's characters in repeated paragraphs",
               thresholds=("max_dup_para_char_frac",)),
        Column("quality_gopher_dup_line_frac", "fraction of lines repeating an earlier one",
               thresholds=("max_dup_line_frac",)),
        Column("quality_gopher_dup_line_char_frac", "fraction of the text's characters in repeated lines",
               thresholds=("max_dup_line_char_frac",)),
        Column("quality_gopher_top_{n}gram_frac", "characters of the most frequent n-gram times its count, over "
               "the text's characters; one column per n of max_top_ngram_char_frac",
               thresholds=("max_top_ngram_char_frac.{n}",)),
        Column("quality_gopher_dup_{n}gram_frac", "fraction of the text's characters in n-grams repeating an "
               "earlier one; one column per n of max_dup_ngram_char_frac",
               thresholds=("max_dup_ngram_char_frac.{n}",)),
    )
    drop_reasons: ClassVar[dict[str, str]] = {
        "gopher_empty": "empty text",
        "gopher_dup_para": "fraction of repeated paragraphs above max_dup_para_frac",
        "gopher_dup_para_chars": "fraction of characters in repeated paragraphs above max_dup_para_char_frac",
        "gopher_dup_line": "fraction of repeated lines above max_dup_line_frac",
        "gopher_dup_line_chars": "fraction of characters in repeated lines above max_dup_line_char_frac",
        "gopher_top_{n}gram": "the most frequent n-gram covers more than max_top_ngram_char_frac[n] of the "
                              "characters (one reason per n)",
        "gopher_dup_{n}gram": "repeated n-grams cover more than max_dup_ngram_char_frac[n] of the characters "
                              "(one reason per n)",
    }

    def columns(self) -> tuple[Column, ...]:
        cfg = self.config
        return (*(c for c in self.writes if "{n}" not in c.name),
                *(Column(f"quality_gopher_top_{n}gram_frac", f"characters of the most frequent {n}-gram times its "
                         "count, over the text's characters", thresholds=(f"max_top_ngram_char_frac.{n}",))
                  for n in cfg.max_top_ngram_char_frac),
                *(Column(f"quality_gopher_dup_{n}gram_frac", f"fraction of the text's characters in {n}-grams "
                         "repeating an earlier one", thresholds=(f"max_dup_ngram_char_frac.{n}",))
                  for n in cfg.max_dup_ngram_char_frac))

    def reasons(self) -> dict[str, str]:
        cfg = self.config
        out = {r: m for r, m in self.drop_reasons.items() if "{n}" not in r}
        for n in cfg.max_top_ngram_char_frac:
            out[f"gopher_top_{n}gram"] = (f"the most frequent {n}-gram covers more than max_top_ngram_char_frac[{n}] "
                                          "of the characters")
        for n in cfg.max_dup_ngram_char_frac:
            out[f"gopher_dup_{n}gram"] = (f"repeated {n}-grams cover more than max_dup_ngram_char_frac[{n}] of the "
                                          "characters")
        return out

    def signals(self, text: str) -> list[float]:
        """[dup para frac, dup para char frac, dup line frac, dup line char frac, top n-gram fracs...,
        dup n-gram fracs...] of one text, in config order."""
        cfg = self.config
        n_chars = len(text)
        if not n_chars:
            return [0.0] * (4 + len(cfg.max_top_ngram_char_frac) + len(cfg.max_dup_ngram_char_frac))
        paragraphs = PARAGRAPH_SPLIT_RE.split(text.strip())
        para_dups, para_chars = duplicate_stats(paragraphs)
        lines = LINE_SPLIT_RE.split(text)
        line_dups, line_chars = duplicate_stats(lines)
        out = [para_dups / len(paragraphs), para_chars / n_chars]
        out += [line_dups / len(lines), line_chars / n_chars]

        tokens = tokenize(text)
        vocab: dict[str, int] = {}
        ids = np.array([vocab.setdefault(t, len(vocab)) for t in tokens], dtype=np.uint64)
        ids = (ids + np.uint64(1)) * _MIX
        cum = np.zeros(len(tokens) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens)), out=cum[1:])
        for n in cfg.max_top_ngram_char_frac:
            out.append(top_ngram_chars(ids, cum, n) / n_chars)
        no_repeat_from: int | None = None  # no repeated n-gram => no repeated longer n-gram
        for n in cfg.max_dup_ngram_char_frac:
            if no_repeat_from is not None and n >= no_repeat_from:
                out.append(0.0)
                continue
            chars = duplicate_ngram_chars(ids, cum, n)
            if chars == 0:
                no_repeat_from = n
            out.append(chars / n_chars)
        return out

    def __call__(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        texts = texts_of(table, cfg.max_inspect_chars)
        n_sig = 4 + len(cfg.max_top_ngram_char_frac) + len(cfg.max_dup_ngram_char_frac)
        cols = np.array([self.signals(t) for t in texts], dtype=np.float64).reshape(len(texts), n_sig).T
        names = ["dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"]
        names += [f"top_{n}gram_frac" for n in cfg.max_top_ngram_char_frac]
        names += [f"dup_{n}gram_frac" for n in cfg.max_dup_ngram_char_frac]
        for name, col in zip(names, cols, strict=True):
            table = set_column(table, f"quality_gopher_{name}", col)

        def over(col: np.ndarray, threshold: float | None) -> np.ndarray | None:
            return None if threshold is None else col > threshold

        empty = np.array([not t for t in texts], dtype=bool)
        rules = [
            ("gopher_empty", empty),
            ("gopher_dup_para", over(cols[0], cfg.max_dup_para_frac)),
            ("gopher_dup_para_chars", over(cols[1], cfg.max_dup_para_char_frac)),
            ("gopher_dup_line", over(cols[2], cfg.max_dup_line_frac)),
            ("gopher_dup_line_chars", over(cols[3], cfg.max_dup_line_char_frac)),
        ]
        i = 4
        for n, thr in cfg.max_top_ngram_char_frac.items():
            rules.append((f"gopher_top_{n}gram", over(cols[i], thr)))
            i += 1
        for n, thr in cfg.max_dup_ngram_char_frac.items():
            rules.append((f"gopher_dup_{n}gram", over(cols[i], thr)))
            i += 1
        return set_drops(table, first_reasons(table.num_rows, rules))
