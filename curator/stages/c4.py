"""C4's line-level cleaning (Raffel et al. 2020, "Exploring the Limits of Transfer Learning", section 2.2).

Each line of the text (stripped) goes through these line rules, in order; a failing line is removed:

1. a word longer than ``max_word_length`` (1000) characters (C4's released code);
2. Wikipedia-style citation marks (``[1]``, ``[edit]``, ``[citation needed]``) are deleted from the line
   (``remove_citations``);
3. the line does not end in terminal punctuation (``.``, ``!``, ``?``, ``"``, ``'``) or ends in ``...``
   (``filter_no_terminal_punct``);
4. fewer than ``min_words_per_line`` (3) words;
5. the line mentions "javascript" (``filter_javascript``);
6. a cookie / terms-of-use / privacy-policy notice (``filter_policy``).

Document rules (reason: rule): ``c4_lorem_ipsum`` (a line that survived rules 1-4 holds "lorem ipsum"),
``c4_curly_bracket`` (such a line holds ``{``), ``c4_too_few_sentences`` (the kept lines hold fewer than
``min_num_sentences`` (5) sentences). A kept document's ``text`` becomes its kept lines joined by newlines;
a dropped one keeps its text. Columns: ``quality_c4_lines``, ``quality_c4_removed_lines``,
``quality_c4_sentences``. Documents longer than ``max_inspect_chars`` (default 1,000,000) characters are
cut to that length before cleaning (the cleaned text comes from the inspected part only).
"""

from __future__ import annotations

import re
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curator.stages.base import Column, Stage, StageConfig, set_column, set_drops
from curator.stages.text_utils import count_sentences, texts_of, tokenize

CITATION_RE = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
END_PUNCTUATION = (".", "!", "?", '"', "'")
POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


class C4QualityConfig(StageConfig):
    remove_citations: bool = Field(True, description="delete Wikipedia-style citation marks ([1], [edit], "
                                   "[citation needed]) from each line")
    filter_no_terminal_punct: bool = Field(True, description="remove lines that do not end in terminal punctuation "
                                           "(. ! ? \" ') or that end in ...")
    min_words_per_line: int | None = Field(3, ge=0, description="remove lines with fewer whitespace-separated "
                                           "words; None: off")
    max_word_length: int | None = Field(1000, ge=1, description="remove lines holding a word longer than this many "
                                        "characters; None: off")
    filter_lorem_ipsum: bool = Field(True, description="drop a document with a line (one that passed the "
                                     "earlier line rules) containing \"lorem ipsum\" (c4_lorem_ipsum)")
    filter_javascript: bool = Field(True, description="remove lines mentioning \"javascript\"")
    filter_curly_bracket: bool = Field(True, description="drop a document with a line (one that passed "
                                       "the earlier line rules) containing { (c4_curly_bracket)")
    filter_policy: bool = Field(True, description="remove cookie, terms-of-use and privacy-policy notice lines")
    min_num_sentences: int | None = Field(5, ge=0, description="sentences in the kept lines below which a document is "
                                          "dropped (c4_too_few_sentences); None: off")
    max_inspect_chars: int = Field(1_000_000, ge=1, description="characters of a document the stage inspects "
                                   "(a longer one is cut to this length before cleaning)")


class C4Quality(Stage[C4QualityConfig]):
    """C4's cleaning: remove boilerplate lines, drop documents with lorem ipsum, code or too few sentences.

    See the module docstring for the line and document rules.
    """

    name: ClassVar[str] = "c4_quality"
    writes: ClassVar[tuple[Column, ...]] = (
        Column("text", "the kept lines joined by newlines (a dropped document keeps its text)"),
        Column("quality_c4_lines", "lines of the inspected text"),
        Column("quality_c4_removed_lines", "lines not kept: removed by a line rule, or (on a document a lorem "
               "ipsum or curly bracket line dropped) not reached"),
        Column("quality_c4_sentences", "sentences in the kept lines (up to the line that dropped the document)",
               thresholds=("min_num_sentences",)),
    )
    drop_reasons: ClassVar[dict[str, str]] = {
        "c4_lorem_ipsum": "a line that passed the earlier line rules contains \"lorem ipsum\" (filter_lorem_ipsum)",
        "c4_curly_bracket": "a line that passed the earlier line rules contains { (filter_curly_bracket)",
        "c4_too_few_sentences": "the kept lines hold fewer than min_num_sentences sentences",
    }

    def clean(self, text: str) -> tuple[str, str | None, int, int, int]:
        """(cleaned text, document drop reason or None, lines, removed lines, sentences in kept lines)."""
        cfg = self.config
        lines = text.splitlines()
        kept: list[str] = []
        sentences = 0
        for raw in lines:
            line = raw.strip()
            words = line.split()
            if cfg.max_word_length is not None and any(len(w) > cfg.max_word_length for w in words):
                continue
            if cfg.remove_citations and "[" in line:
                line = CITATION_RE.sub("", line)
            if cfg.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith("...")):
                continue
            if cfg.min_words_per_line is not None and len(words) < cfg.min_words_per_line:
                continue
            low = line.lower()
            if cfg.filter_lorem_ipsum and "lorem ipsum" in low:
                return text, "c4_lorem_ipsum", len(lines), len(lines) - len(kept), sentences
            if cfg.filter_javascript and "javascript" in low:
                continue
            if cfg.filter_curly_bracket and "{" in line:
                return text, "c4_curly_bracket", len(lines), len(lines) - len(kept), sentences
            if cfg.filter_policy and any(p in low for p in POLICY_PHRASES):
                continue
            sentences += count_sentences(tokenize(line))
            kept.append(line)
        reason = None
        if cfg.min_num_sentences is not None and sentences < cfg.min_num_sentences:
            reason = "c4_too_few_sentences"
        cleaned = "\n".join(kept).strip() if reason is None else text
        return cleaned, reason, len(lines), len(lines) - len(kept), sentences

    def __call__(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        out = [self.clean(t) for t in texts_of(table, cfg.max_inspect_chars)]
        n = len(out)
        reasons = [r[1] for r in out]
        originals = table.column("text")
        # A dropped document keeps its original (uncut) text, for rejected/.
        texts = [o[0] if o[1] is None else None for o in out]
        text_col = pa.array(texts, type=pa.string())
        if n:
            text_col = pc.coalesce(text_col, originals.combine_chunks())
        table = set_column(table, "text", text_col)
        table = set_column(table, "quality_c4_lines", pa.array([o[2] for o in out], type=pa.int64()))
        table = set_column(table, "quality_c4_removed_lines", pa.array([o[3] for o in out], type=pa.int64()))
        table = set_column(table, "quality_c4_sentences", pa.array([o[4] for o in out], type=pa.int64()))
        return set_drops(table, reasons)
