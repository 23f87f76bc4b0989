"""Toxicity: flagged-word ratio from per-language word lists, plus an optional fastText classifier.

Word lists: one entry (a word or a phrase of several words) per line, ``#`` starts a comment. The default
lists (``curator/data/toxicity/<lang>.txt``, 23 languages written with spaces between words) come from
LDNOOBW, the "List of Dirty, Naughty, Obscene, and Otherwise Bad Words" (CC BY 4.0; see the README in
that folder). Users add or replace lists with ``word_lists`` ({lang: path}; the key ``"*"`` applies to
every document).

Matching is vectorized in Arrow: the text (first ``max_chars`` characters, lowercased) is split into
words (runs of Unicode letters, digits and combining marks) in one ``split_pattern_regex`` call per batch;
single words and phrases (word n-grams) are looked up with ``is_in`` against the list. A document's list is
chosen by its ``lang`` column (written by ``langid``); a document with no ``lang`` or a language without a
list is checked against the union of all loaded lists.

Columns and drops:
- ``toxicity_word_ratio`` = flagged words / words (0.0 for a text without words). Dropped with reason
  ``toxic_words`` when the ratio is above ``max_word_ratio`` (default 0.01; None: never).
- With ``model_path`` (a fastText model, e.g. trained by ``curator train-classifier``): ``toxicity_score`` =
  P(``positive_label``), dropped with reason ``toxic_classifier`` at or above ``classifier_threshold``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curator.paths import InputPath
from curator.stages.base import Column, Stage, StageConfig, set_column, set_drops
from curator.stages.fasttext_model import FastTextModel, prepare_text

log = logging.getLogger(__name__)

DEFAULT_LISTS = Path(__file__).resolve().parents[1] / "data" / "toxicity"
WORD_SPLIT = r"[^\p{L}\p{N}\p{M}]+"
ANY_LANG = "*"


class ToxicityConfig(StageConfig):
    word_lists: dict[str, InputPath] = Field({}, description="language code (or * for every document) -> word-list "
                                             "file, one word or phrase per line; replaces the bundled list of that "
                                             "language")
    default_lists: bool = Field(True, description="load the bundled LDNOOBW lists (curator/data/toxicity)")
    languages: list[str] | None = Field(None, description="bundled lists to load, by language code (None: all "
                                        "23)")
    lang_column: str = Field("lang", description="column naming each document's language (written by langid); "
                             "a document without one is checked against every loaded list")
    max_word_ratio: float | None = Field(0.01, ge=0, le=1, description="fraction (0-1) of a document's words in "
                                         "its list above which it is dropped (toxic_words); None: off")
    model_path: InputPath | None = Field(None, description="fastText toxicity classifier file (optional); writes "
                                         "toxicity_score")
    positive_label: str = Field("toxic", description="the classifier's label (without __label__) whose "
                                "probability is toxicity_score")
    classifier_threshold: float = Field(0.5, ge=0, le=1, description="toxicity_score (probability 0-1) at or above "
                                        "which a document is dropped (toxic_classifier)")
    max_chars: int | None = Field(100_000, ge=1, description="characters of the text inspected by the word lists "
                                  "and the classifier; None: the whole text")


def _words(texts: pa.Array) -> pa.ListArray:
    """Lowercased words of each text (empty pieces from leading/trailing separators included)."""
    return pc.split_pattern_regex(pc.utf8_lower(texts), WORD_SPLIT)


def load_word_list(path: str | Path) -> set[str]:
    """Entries of a list file as space-joined words; entries that split into no word are skipped."""
    lines = [ln.split("#", 1)[0].strip() for ln in Path(path).read_text(encoding="utf-8-sig").splitlines()]
    lines = [ln for ln in lines if ln]
    entries = set()
    for words in _words(pa.array(lines, type=pa.string())).to_pylist():
        words = [w for w in words if w]
        if words:
            entries.add(" ".join(words))
    return entries


class Toxicity(Stage[ToxicityConfig]):
    """Drop toxic documents: too high a share of listed bad words, or a fastText classifier's verdict (optional).

    Writes ``toxicity_word_ratio`` (and ``toxicity_score``); see the module docstring.
    """

    name: ClassVar[str] = "toxicity"
    stateful: ClassVar[bool] = True
    writes: ClassVar[tuple[Column, ...]] = (
        Column("toxicity_word_ratio", "flagged words / words (0.0 for a text without words)",
               thresholds=("max_word_ratio",)),
        Column("toxicity_score", "P(positive_label) of the classifier (written only with model_path)",
               thresholds=("classifier_threshold",)),
    )
    drop_reasons: ClassVar[dict[str, str]] = {
        "toxic_words": "flagged-word ratio above max_word_ratio",
        "toxic_classifier": "toxicity_score at or above classifier_threshold (model_path)",
    }

    def columns(self) -> tuple[Column, ...]:
        return self.writes if self.config.model_path else self.writes[:1]

    def __init__(self, config: ToxicityConfig | None = None, **params) -> None:
        super().__init__(config, **params)
        cfg = self.config
        lists: dict[str, set[str]] = {}
        if cfg.default_lists:
            for f in sorted(DEFAULT_LISTS.glob("*.txt")):
                if not f.name.startswith("LICENSE") and (cfg.languages is None or f.stem in cfg.languages):
                    lists[f.stem] = load_word_list(f)
        for lang, path in cfg.word_lists.items():
            lists[lang] = load_word_list(path)
        common = lists.pop(ANY_LANG, set())
        self.lists = {lang: frozenset(entries | common) for lang, entries in lists.items()}
        self.union = frozenset().union(common, *self.lists.values())
        self.model = FastTextModel(cfg.model_path) if cfg.model_path else None

    def word_ratio(self, table: pa.Table) -> np.ndarray:
        """Flagged-word ratio per row (see the module docstring)."""
        n = table.num_rows
        texts = pc.fill_null(table.column("text").combine_chunks(), "")
        if self.config.max_chars is not None:
            texts = pc.utf8_slice_codeunits(texts, 0, self.config.max_chars)
        words = _words(texts)
        flat = words.flatten()
        parents = pc.list_parent_indices(words).to_numpy()
        keep = pc.greater(pc.binary_length(flat), 0)
        flat = flat.filter(keep)
        parents = parents[keep.to_numpy(zero_copy_only=False)]
        totals = np.bincount(parents, minlength=n)
        flagged = np.zeros(len(flat), dtype=bool)
        for entries, rows in self._groups(table):
            sel = np.flatnonzero(rows[parents])
            if sel.size and entries:
                self._mark(flat.take(pa.array(sel)), parents[sel], entries, flagged, sel)
        hits = np.bincount(parents[flagged], minlength=n)
        return np.divide(hits, totals, out=np.zeros(n), where=totals > 0)

    def _groups(self, table: pa.Table):
        """(entries, row mask) per word list that applies to some rows of the batch."""
        n = table.num_rows
        if self.config.lang_column not in table.column_names:
            yield self.union, np.ones(n, dtype=bool)
            return
        langs = np.array(table.column(self.config.lang_column).to_pylist(), dtype=object)
        covered = np.zeros(n, dtype=bool)
        for lang in set(langs.tolist()) & self.lists.keys():
            rows = langs == lang
            covered |= rows
            yield self.lists[lang], rows
        if not covered.all():
            yield self.union, ~covered

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _index(entries: frozenset[str]) -> list[tuple[int, pa.Array, pa.Array]]:
        """(phrase length, entries of that length, their first words) for each length in the list."""
        by_size: dict[int, set[str]] = {}
        for e in entries:
            by_size.setdefault(e.count(" ") + 1, set()).add(e)
        return [(size, pa.array(sorted(group), pa.string()),
                 pa.array(sorted({e.split(" ", 1)[0] for e in group}), pa.string()))
                for size, group in sorted(by_size.items())]

    def _mark(self, words: pa.Array, parents: np.ndarray, entries: frozenset[str], flagged: np.ndarray,
              positions: np.ndarray) -> None:
        """Set ``flagged`` at ``positions`` of words covered by an entry (a word or a word n-gram).

        An n-gram is only built where its first word starts some entry of that length, and only inside
        one document."""
        n = len(words)
        for size, group, firsts in self._index(entries):
            if size == 1:
                hit = np.flatnonzero(pc.is_in(words, value_set=group).to_numpy(zero_copy_only=False))
            else:
                starts = np.flatnonzero(pc.is_in(words, value_set=firsts).to_numpy(zero_copy_only=False))
                starts = starts[starts + size <= n]
                starts = starts[parents[starts] == parents[starts + size - 1]]
                if not starts.size:
                    continue
                grams = words.take(pa.array(starts))
                for k in range(1, size):
                    grams = pc.binary_join_element_wise(grams, words.take(pa.array(starts + k)), " ")
                hit = starts[pc.is_in(grams, value_set=group).to_numpy(zero_copy_only=False)]
            for k in range(size):
                flagged[positions[hit + k]] = True

    def __call__(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        ratio = self.word_ratio(table)
        table = set_column(table, "toxicity_word_ratio", pa.array(ratio, type=pa.float64()))
        reasons = np.full(table.num_rows, None, dtype=object)
        if cfg.max_word_ratio is not None:
            reasons[ratio > cfg.max_word_ratio] = "toxic_words"
        if self.model is not None:
            lines = (prepare_text(t, cfg.max_chars) for t in table.column("text").to_pylist())
            score = self.model.label_prob(lines, cfg.positive_label)
            table = set_column(table, "toxicity_score", pa.array(score, type=pa.float64()))
            reasons[(score >= cfg.classifier_threshold) & (reasons == None)] = "toxic_classifier"  # noqa: E711
        return set_drops(table, reasons.tolist())
