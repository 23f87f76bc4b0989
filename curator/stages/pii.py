"""PII redaction with presidio-analyzer and presidio-anonymizer, with nothing downloaded.

The NLP engine is a blank spaCy English pipeline (``spacy.blank("en")``, saved once under ``cache_dir`` and
given to presidio's ``NlpEngineProvider`` as the model path), so only presidio's pattern recognizers run:
EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD (Luhn checksum), IP_ADDRESS, IBAN_CODE (checksum), US_SSN, and URL
when listed in ``entities``. With ``spacy_model`` (the name or path of an installed spaCy pipeline with an
NER component) PERSON and LOCATION are added. ``tldextract`` (used by the e-mail recognizer) is set to its
bundled public-suffix snapshot, with no cache and no network.

Each detected span is replaced by ``<ENTITY_TYPE>``; ``pii_count`` counts the replacements. The stage never
drops a document, except one longer than ``max_chars`` (default 1,000,000 characters), dropped with reason
``pii_too_long`` so that time stays bounded (None: no cap).

Speed (presidio runs at a few hundred thousand characters per second): with ``precheck`` (default on) a
combined regex finds candidate tokens (whitespace-delimited runs holding a digit or '@', ``::`` for IPv6,
``x.yy`` for URLs) and presidio analyzes only windows of ``window_margin`` characters around them, cut at
whitespace; a text without any candidate is not analyzed at all. Every entity these recognizers find lies
inside a window (each holds a candidate character), so results equal a full analysis; bench/bench_pii.py
checks that on its corpus. NER entities (PERSON, LOCATION) have no cheap candidate, so with them the whole
text is analyzed. Long spans are analyzed in chunks of at most ``chunk_chars`` characters, cut at
whitespace and overlapping by ``window_margin``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
from pydantic import Field

from curator.stages.base import Stage, StageConfig, set_column, set_drops

DEFAULT_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE", "US_SSN")
NER_ENTITIES = ("PERSON", "LOCATION")
# Characters that every match of a pattern recognizer for these entities contains.
_CANDIDATES = {
    "EMAIL_ADDRESS": r"@",
    "PHONE_NUMBER": r"\d",
    "CREDIT_CARD": r"\d",
    "IP_ADDRESS": r"\d|::|:[0-9A-Fa-f]{1,4}:",
    "IBAN_CODE": r"\d",
    "US_SSN": r"\d",
    "URL": r"://|[A-Za-z0-9]\.[A-Za-z]{2}",
}
_WS_CHARS = " \t\n\r\f\v"
_WS = re.compile(r"[ \t\n\r\f\v]")


class PiiConfig(StageConfig):
    entities: list[str] | None = None  # None: DEFAULT_ENTITIES (+ NER_ENTITIES with spacy_model)
    score_threshold: float = 0.4
    spacy_model: str | None = None
    language: str = "en"
    precheck: bool = True
    window_margin: int = Field(100, ge=0, le=250)
    chunk_chars: int = Field(100_000, ge=2_000)
    max_chars: int | None = 1_000_000
    cache_dir: str | None = None  # default: $CURATOR_CACHE_DIR or ~/.cache/curator


def use_bundled_suffix_list() -> None:
    """Make tldextract use its bundled public-suffix snapshot only (no HTTP, no cache files)."""
    import tldextract
    import tldextract.tldextract as tlde

    if getattr(tlde.TLD_EXTRACTOR, "_curator_offline", False):
        return
    extractor = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)
    extractor._curator_offline = True
    tlde.TLD_EXTRACTOR = extractor


def blank_pipeline_path(language: str = "en", cache_dir: str | None = None) -> Path:
    """A saved blank spaCy pipeline for ``language`` under the cache folder (created once, atomically)."""
    import spacy

    root = Path(cache_dir or os.environ.get("CURATOR_CACHE_DIR") or Path.home() / ".cache" / "curator")
    path = root / f"spacy-blank-{language}-{spacy.__version__}"
    if (path / "config.cfg").is_file():
        return path
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=path.name + ".", dir=root))
    try:
        spacy.blank(language).to_disk(tmp)
        try:
            tmp.rename(path)
        except OSError:  # another worker got there first
            if not (path / "config.cfg").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


class PiiRedact(Stage):
    name: ClassVar[str] = "pii"
    Config: ClassVar[type[StageConfig]] = PiiConfig
    stateful: ClassVar[bool] = True

    def __init__(self, config: PiiConfig | None = None, **params) -> None:
        super().__init__(config, **params)
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.entities import OperatorConfig

        cfg = self.config
        use_bundled_suffix_list()
        model = cfg.spacy_model or str(blank_pipeline_path(cfg.language, cfg.cache_dir))
        if cfg.entities is not None:
            self.entities = list(cfg.entities)
        else:
            self.entities = list(DEFAULT_ENTITIES) + (list(NER_ENTITIES) if cfg.spacy_model else [])
        nlp_engine = NlpEngineProvider(nlp_configuration={
            "nlp_engine_name": "spacy", "models": [{"lang_code": cfg.language, "model_name": model}],
        }).create_engine()
        registry = RecognizerRegistry(supported_languages=[cfg.language])
        registry.load_predefined_recognizers(languages=[cfg.language], nlp_engine=nlp_engine)
        self.analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine,
                                       supported_languages=[cfg.language])
        self.anonymizer = AnonymizerEngine()
        self.operators = {e: OperatorConfig("replace", {"new_value": f"<{e}>"}) for e in self.entities}
        patterns = [_CANDIDATES.get(e) for e in self.entities]
        self._candidate = (re.compile("|".join(sorted(set(patterns))))
                           if cfg.precheck and all(patterns) else None)

    # ------------------------------------------------------------------------------------ analysis
    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character ranges of ``text`` to analyze (cut at whitespace; empty: nothing to analyze)."""
        if self._candidate is None:
            return self._chunks(0, len(text), text)
        margin, limit = self.config.window_margin, self.config.chunk_chars
        merged: list[list[int]] = []
        pos = 0
        while (m := self._candidate.search(text, pos)) is not None:
            start = _snap_left(text, m.start() - margin, limit)
            end = _snap_right(text, m.end() + margin, limit)
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
            pos = max(end, m.end())
        return [c for start, end in merged for c in self._chunks(start, end, text)]

    def _chunks(self, start: int, end: int, text: str) -> list[tuple[int, int]]:
        """[start, end) in pieces of at most ``chunk_chars``, cut at whitespace where there is some in the
        last half of a piece (else cut hard), each overlapping the previous one by about the margin."""
        size, margin = self.config.chunk_chars, self.config.window_margin
        out = []
        while end - start > size:
            cut = _snap_left(text, start + size, size // 2)
            if cut <= start + size // 2:
                cut = start + size
            out.append((start, cut))
            start = _snap_left(text, cut - margin, margin)  # > previous start: size // 2 > 2 * margin
        if end > start:
            out.append((start, end))
        return out

    def analyze(self, text: str) -> list:
        """presidio results over the whole text (offsets into ``text``), duplicates removed."""
        from presidio_analyzer import RecognizerResult

        found: dict[tuple[str, int, int], float] = {}
        for start, end in self.spans(text):
            for r in self.analyzer.analyze(text[start:end], language=self.config.language,
                                           entities=self.entities,
                                           score_threshold=self.config.score_threshold):
                key = (r.entity_type, r.start + start, r.end + start)
                found[key] = max(found.get(key, 0.0), r.score)
        return [RecognizerResult(e, s, t, score) for (e, s, t), score in sorted(found.items())]

    def redact(self, text: str) -> tuple[str, int]:
        """(redacted text, number of replaced spans)."""
        results = self.analyze(text)
        if not results:
            return text, 0
        out = self.anonymizer.anonymize(text=text, analyzer_results=results, operators=self.operators)
        return out.text, len(out.items)

    def __call__(self, table: pa.Table) -> pa.Table:
        cap = self.config.max_chars
        texts, counts, reasons = [], [], []
        for text in table.column("text").to_pylist():
            if text and cap is not None and len(text) > cap:
                texts.append(text)
                counts.append(None)
                reasons.append("pii_too_long")
                continue
            redacted, n = self.redact(text) if text else (text, 0)
            texts.append(redacted)
            counts.append(n)
            reasons.append(None)
        table = set_column(table, "text", pa.array(texts, type=pa.string()))
        table = set_column(table, "pii_count", pa.array(counts, type=pa.int32()))
        return set_drops(table, reasons)


def _snap_left(text: str, i: int, limit: int) -> int:
    """Start of the token holding position ``i`` (after the last whitespace before it), looking back at
    most ``limit`` characters (then ``i`` itself)."""
    if i <= 0:
        return 0
    lo = max(0, i - limit)
    j = max(text.rfind(c, lo, i) for c in _WS_CHARS)
    return j + 1 if j >= 0 else (0 if lo == 0 else i)


def _snap_right(text: str, i: int, limit: int) -> int:
    """End of the token holding position ``i`` (the next whitespace), looking ahead at most ``limit``."""
    n = len(text)
    if i >= n:
        return n
    m = _WS.search(text, i, min(n, i + limit))
    return m.start() if m else min(n, i + limit)
