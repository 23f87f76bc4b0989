"""``min_length``: drop documents that are too short (and, optionally, too long).

Signals are computed vectorized in Arrow: ``quality_char_count`` (Unicode code points) and, when
``min_words`` is set, ``quality_word_count`` (whitespace-separated tokens). A null text counts as empty.
Drop reasons: ``too_short`` (fewer than ``min_chars`` characters or ``min_words`` words) and
``too_long`` (more than ``max_chars`` characters, when set).
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curator.stages.base import Column, Stage, StageConfig, set_column, set_drops


class MinLengthConfig(StageConfig):
    min_chars: int = Field(200, ge=0, description="characters (Unicode code points) below which a document is "
                           "dropped as too_short; 0: off")
    min_words: int | None = Field(None, ge=0, description="whitespace-separated words below which a document is "
                                  "dropped as too_short (also writes quality_word_count); None: off")
    max_chars: int | None = Field(None, ge=1, description="characters above which a document is dropped as "
                                  "too_long; None: off")


class MinLength(Stage[MinLengthConfig]):
    """Length filter: ``too_short`` below ``min_chars``/``min_words``, ``too_long`` above ``max_chars``."""

    name: ClassVar[str] = "min_length"
    writes: ClassVar[tuple[Column, ...]] = (
        Column("quality_char_count", "characters (Unicode code points; 0 for a null text)",
               thresholds=("min_chars", "max_chars")),
        Column("quality_word_count", "whitespace-separated words (written only with min_words)",
               thresholds=("min_words",)),
    )
    drop_reasons: ClassVar[dict[str, str]] = {
        "too_short": "fewer than min_chars characters or min_words words",
        "too_long": "more than max_chars characters",
    }

    def columns(self) -> tuple[Column, ...]:
        return self.writes if self.config.min_words is not None else self.writes[:1]

    def __call__(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        text = pc.fill_null(table.column("text"), "")
        chars = pc.utf8_length(text)
        table = set_column(table, "quality_char_count", chars)
        short = pc.less(chars, cfg.min_chars)
        if cfg.min_words is not None:
            words = pc.count_substring_regex(text, r"\S+")
            table = set_column(table, "quality_word_count", words)
            short = pc.or_(short, pc.less(words, cfg.min_words))
        reasons = pc.if_else(short, pa.scalar("too_short"), pa.scalar(None, pa.string()))
        if cfg.max_chars is not None:
            long_ = pc.greater(chars, cfg.max_chars)
            reasons = pc.if_else(pc.and_(long_, pc.is_null(reasons)), pa.scalar("too_long"), reasons)
        return set_drops(table, pc.cast(reasons, pa.string()))
