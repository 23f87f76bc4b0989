"""FineWeb's custom quality rules (Penedo et al. 2024, "The FineWeb Datasets", section 3.5).

Lines are the non-blank lines of the text (split on ``\\n``). Rules, in this order (reason: rule):

- ``fineweb_empty``: no non-blank line.
- ``fineweb_line_punct_ratio``: fraction of lines ending in sentence-terminal punctuation (any Unicode
  Sentence_Terminal character) below ``line_punct_thr`` (0.12); with ``line_punct_exclude_zero`` a
  ratio of exactly 0 passes. Column ``quality_fineweb_line_punct_ratio``.
- ``fineweb_short_line_ratio``: fraction of lines of at most ``short_line_length`` (30) characters above
  ``short_line_thr`` (0.67). Column ``quality_fineweb_short_line_ratio``.
- ``fineweb_char_dup_ratio``: characters of lines that repeat an earlier line, over the characters of the
  text without newlines, above ``char_duplicates_ratio`` (0.01). Column ``quality_fineweb_char_dup_ratio``.
- ``fineweb_list_ratio``: newlines per word above ``new_line_ratio`` (0.3), the list-like documents rule.
  Column ``quality_fineweb_newline_ratio``.

Every threshold is a parameter; ``None`` switches its rule off. At most ``max_inspect_chars`` characters
(default 1,000,000) of a document are inspected.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from curator.stages.base import Column, Stage, StageConfig, set_column, set_drops
from curator.stages.text_utils import TERMINALS_TUPLE, duplicate_stats, first_reasons, texts_of, tokenize


class FineWebQualityConfig(StageConfig):
    line_punct_thr: float | None = Field(
        0.12, ge=0, le=1, description="fraction (0-1) of non-blank lines ending in sentence-terminal punctuation "
        "below which a document is dropped (fineweb_line_punct_ratio); None: off")
    line_punct_exclude_zero: bool = Field(
        False, description="let a document whose line punctuation ratio is exactly 0 pass the line_punct_thr rule")
    short_line_thr: float | None = Field(
        0.67, ge=0, le=1, description="fraction (0-1) of non-blank lines of at most short_line_length characters "
        "above which a document is dropped (fineweb_short_line_ratio); None: off")
    short_line_length: int = Field(30, ge=1, description="characters up to which a line counts as short")
    char_duplicates_ratio: float | None = Field(
        0.01, ge=0, le=1, description="fraction (0-1) of the text's characters (newlines excluded) in lines that "
        "repeat an earlier line, above which a document is dropped (fineweb_char_dup_ratio); None: off")
    new_line_ratio: float | None = Field(
        0.3, ge=0, description="newlines per word (can exceed 1) above which a document is dropped as list-like "
        "(fineweb_list_ratio); None: off")
    max_inspect_chars: int = Field(1_000_000, ge=1, description="characters of a document the stage inspects "
                                   "(signals of a longer one are computed on its start)")


class FineWebQuality(Stage[FineWebQualityConfig]):
    """FineWeb's quality rules: drop documents by line punctuation, short lines, duplicated lines and newlines.

    See the module docstring for the rules and columns.
    """

    name: ClassVar[str] = "fineweb_quality"
    writes: ClassVar[tuple[Column, ...]] = (
        Column("quality_fineweb_line_punct_ratio", "fraction of non-blank lines ending in sentence-terminal "
               "punctuation (0 without a non-blank line)", thresholds=("line_punct_thr",)),
        Column("quality_fineweb_short_line_ratio", "fraction of non-blank lines of at most short_line_length "
               "characters", thresholds=("short_line_thr",)),
        Column("quality_fineweb_char_dup_ratio", "characters of lines repeating an earlier line over the text's "
               "characters without newlines", thresholds=("char_duplicates_ratio",)),
        Column("quality_fineweb_newline_ratio", "newlines per word", thresholds=("new_line_ratio",)),
    )
    drop_reasons: ClassVar[dict[str, str]] = {
        "fineweb_empty": "no non-blank line",
        "fineweb_line_punct_ratio": "fraction of lines ending in terminal punctuation below line_punct_thr",
        "fineweb_short_line_ratio": "fraction of short lines above short_line_thr",
        "fineweb_char_dup_ratio": "fraction of characters in duplicated lines above char_duplicates_ratio",
        "fineweb_list_ratio": "newlines per word above new_line_ratio (a list-like document)",
    }

    def signals(self, text: str) -> tuple[float, float, float, float]:
        """(line punctuation ratio, short line ratio, duplicated line char ratio, newline ratio);
        all 0 for a text without a non-blank line."""
        cfg = self.config
        lines = [ln for ln in text.split("\n") if ln.strip()]
        if not lines:
            return 0.0, 0.0, 0.0, 0.0
        n = len(lines)
        punct = sum(1 for ln in lines if ln.endswith(TERMINALS_TUPLE)) / n
        short = sum(1 for ln in lines if len(ln) <= cfg.short_line_length) / n
        dup = duplicate_stats(lines)[1] / (len(text) - text.count("\n"))
        newlines = text.count("\n") / len(tokenize(text))
        return punct, short, dup, newlines

    def __call__(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        texts = texts_of(table, cfg.max_inspect_chars)
        cols = np.array([self.signals(t) for t in texts], dtype=np.float64).reshape(len(texts), 4).T
        punct, short, dup, newlines = cols
        for name, col in zip(("line_punct_ratio", "short_line_ratio", "char_dup_ratio", "newline_ratio"),
                             cols, strict=True):
            table = set_column(table, f"quality_fineweb_{name}", col)
        empty = np.array([not t.strip() for t in texts], dtype=bool)
        punct_fail = None
        if cfg.line_punct_thr is not None:
            punct_fail = punct < cfg.line_punct_thr
            if cfg.line_punct_exclude_zero:
                punct_fail &= punct != 0
        reasons = first_reasons(table.num_rows, [
            ("fineweb_empty", empty),
            ("fineweb_line_punct_ratio", punct_fail),
            ("fineweb_short_line_ratio", None if cfg.short_line_thr is None else short > cfg.short_line_thr),
            ("fineweb_char_dup_ratio",
             None if cfg.char_duplicates_ratio is None else dup > cfg.char_duplicates_ratio),
            ("fineweb_list_ratio", None if cfg.new_line_ratio is None else newlines > cfg.new_line_ratio),
        ])
        return set_drops(table, reasons)
