"""The presidio engine of the ``pii`` stage (``engine: presidio``): presidio-analyzer, nothing downloaded.

The NLP engine is a blank spaCy English pipeline (``spacy.blank("en")``, saved once under ``cache_dir`` and
given to presidio's ``NlpEngineProvider`` as the model path), so only presidio's pattern recognizers run:
EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD (Luhn checksum), IP_ADDRESS, IBAN_CODE (checksum), US_SSN, and URL
when listed in ``entities``. With ``spacy_model`` (the name or path of an installed spaCy pipeline with an
NER component) PERSON and LOCATION are added. ``tldextract`` (used by the e-mail recognizer) is set to its
bundled public-suffix snapshot, with no cache and no network.

Redaction is repeated on its own output while it still finds something (at most ``passes`` times):
presidio's phone matcher misses a number directly followed by another one until that one is replaced. A
repeat pass analyzes only the surroundings of what the pass before replaced. Overlapping results are
resolved by presidio-anonymizer (its default strategy, entities of one type separated by whitespace
merged); the spans reported are offsets into the original text.

Speed (presidio runs at a few hundred thousand characters per second): with ``precheck`` the engine first
runs, over the whole text, cheap candidate regexes: for e-mail, IP and IBAN a gate that every match
contains ('@', 'd.d.' or 'h:h:', two capitals and two digits; see ``GATES``), for the other pattern
recognizers presidio's own patterns and flags, and for phone numbers a run of at least 5 digits; presidio
then analyzes only windows of ``window_margin`` characters around those matches, widened to whitespace (at
most 1,000 characters, then cut hard) and merged. A text without any match is not analyzed at all. Every
entity the recognizers report lies in such a window, and with the blank pipeline presidio's context words
play no part (it has no lemmas), so the results equal a full analysis. With ``spacy_model`` the margin is at
least 100 characters (context words), and NER entities (PERSON, LOCATION), which have no cheap candidate,
turn the pre-check off: the whole text is analyzed. Long spans are analyzed in chunks of at most
``chunk_chars`` characters, cut at whitespace and overlapping by at least 100 characters.
"""

from __future__ import annotations

import bisect
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from curator.pii.engine import Detection

DEFAULT_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE", "US_SSN")
NER_ENTITIES = ("PERSON", "LOCATION")
# A phone number that phonenumbers finds valid in presidio's regions has at least 5 digits.
PHONE_CANDIDATE = r"\d(?:[\s().\-/+]{0,4}\d){4,}"
# Cheap gates for recognizers whose patterns are slow over long texts: (regex, reach). Every match of
# the recognizer's patterns holds a gate match within the same whitespace-free token (e-mail, IP) or
# starts with one and ends at most ``reach`` characters further (IBAN, up to 34 characters + 8 spaces).
GATES = {
    "EmailRecognizer": (r"@", 0),
    "IpRecognizer": (r"\d{1,3}\.\d{1,3}\.|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:", 0),
    "IbanRecognizer": (r"[A-Z]{2}[0-9]{2}", 48),
}
REGEX_TIMEOUT_S = 10
REPASS_MARGIN = 64
SNAP_LIMIT = 1_000  # window edges move to whitespace at most this far; past it (one huge token), cut hard
_WS_CHARS = " \t\n\r\f\v"
_WS = re.compile(r"[ \t\n\r\f\v]")


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


class _PassMap:
    """Maps offsets of a pass's output back to its input, from the pass's replacements."""

    def __init__(self, replaced: list[tuple[int, int, int, int]]) -> None:
        self.replaced = replaced  # (old start, old end, new start, new end), in text order
        self.new_starts = [r[2] for r in replaced]

    def back(self, pos: int, is_end: bool) -> int:
        i = bisect.bisect_right(self.new_starts, pos) - 1
        if i < 0:
            return pos
        old_s, old_e, new_s, new_e = self.replaced[i]
        if pos >= new_e:
            return old_e + (pos - new_e)
        return old_e if is_end and pos > new_s else old_s  # inside a token: the whole replaced span


class PresidioEngine:
    """presidio's analyzer behind a candidate pre-check; see the module docstring."""

    def __init__(self, entities: list[str] | None = None, score_threshold: float = 0.4,
                 spacy_model: str | None = None, language: str = "en", precheck: bool = True,
                 passes: int = 3, window_margin: int = 32, chunk_chars: int = 100_000,
                 cache_dir: str | None = None) -> None:
        # presidio probes torch for a GPU at import unless told the device; we run no torch model
        os.environ.setdefault("PRESIDIO_DEVICE", "cpu")
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.entities import OperatorConfig

        self.language, self.score_threshold, self.passes = language, score_threshold, passes
        self.chunk_chars = chunk_chars
        use_bundled_suffix_list()
        model = spacy_model or str(blank_pipeline_path(language, cache_dir))
        if entities is not None:
            self.entities = list(entities)
        else:
            self.entities = list(DEFAULT_ENTITIES) + (list(NER_ENTITIES) if spacy_model else [])
        nlp_engine = NlpEngineProvider(nlp_configuration={
            "nlp_engine_name": "spacy", "models": [{"lang_code": language, "model_name": model}],
        }).create_engine()
        registry = RecognizerRegistry(supported_languages=[language])
        registry.load_predefined_recognizers(languages=[language], nlp_engine=nlp_engine)
        self.analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[language])
        self.anonymizer = AnonymizerEngine()
        self._keep = {"DEFAULT": OperatorConfig("keep", {})}
        # with a real pipeline, presidio's context words (lemmas of the 5 words before a match) count
        self._margin = max(window_margin, 100) if spacy_model else window_margin
        self._candidates = self._candidate_regexes() if precheck else None

    def _candidate_regexes(self) -> list[tuple[Any, int]] | None:
        """(regex, reach) pairs whose matches, widened by ``reach`` characters to the right and to whole
        tokens, contain every match of the recognizers in use: a cheap gate where presidio's own pattern
        is slow to run over a whole text (``GATES``), else presidio's patterns with their flags, and a
        digit run for the phone recognizer. None if some recognizer has no cheap candidate."""
        import regex
        from presidio_analyzer import PatternRecognizer
        from presidio_analyzer.predefined_recognizers import PhoneRecognizer, SpacyRecognizer

        out = []
        for rec in self.analyzer.registry.get_recognizers(self.language, entities=self.entities):
            gate = GATES.get(type(rec).__name__)
            if gate is not None:
                out.append((regex.compile(gate[0]), gate[1]))
            elif isinstance(rec, PatternRecognizer) and rec.patterns:
                out += [(regex.compile(p.regex, rec.global_regex_flags), 0) for p in rec.patterns]
            elif isinstance(rec, PhoneRecognizer):
                out.append((regex.compile(PHONE_CANDIDATE), 0))
            elif isinstance(rec, SpacyRecognizer) and not self._nlp_has_components():
                continue  # a blank pipeline finds no entity
            else:  # e.g. the spaCy NER recognizer: analyze everything
                return None
        return out

    def _nlp_has_components(self) -> bool:
        nlp = getattr(self.analyzer.nlp_engine, "nlp", None) or {}
        pipeline = nlp.get(self.language)
        return pipeline is None or bool(pipeline.pipe_names)

    # ------------------------------------------------------------------------------------ analysis
    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character ranges of ``text`` to analyze (cut at whitespace; empty: nothing to analyze)."""
        if self._candidates is None:
            return self._chunks(0, len(text), text)
        margin = self._margin
        raw: list[tuple[int, int]] = []
        try:
            for rx, reach in self._candidates:
                raw += [(m.start() - margin, m.end() + margin + reach)
                        for m in rx.finditer(text, timeout=REGEX_TIMEOUT_S)]
        except TimeoutError:  # pathological text for some pattern: analyze all of it
            return self._chunks(0, len(text), text)
        windows = _merge([(_snap_left(text, start, SNAP_LIMIT), _snap_right(text, end, SNAP_LIMIT))
                          for start, end in _merge(sorted(raw))])
        return [c for start, end in windows for c in self._chunks(start, end, text)]

    def _chunks(self, start: int, end: int, text: str) -> list[tuple[int, int]]:
        """[start, end) in pieces of at most ``chunk_chars``, cut at whitespace where there is some in the
        last half of a piece (else cut hard), each overlapping the previous one by about the margin."""
        size, margin = self.chunk_chars, max(self._margin, 100)
        out = []
        while end - start > size:
            cut = _snap_left(text, start + size, size // 2)
            if cut <= start + size // 2:
                cut = start + size
            out.append((start, cut))
            start = _snap_left(text, cut - margin, margin)  # > previous start: size // 2 > 2 * 250
        if end > start:
            out.append((start, end))
        return out

    def analyze(self, text: str, spans: list[tuple[int, int]] | None = None) -> list:
        """presidio results over ``spans`` of the text (default: :meth:`spans`), offsets into ``text``,
        duplicates removed."""
        from presidio_analyzer import RecognizerResult

        found: dict[tuple[str, int, int], float] = {}
        for start, end in self.spans(text) if spans is None else spans:
            for r in self.analyzer.analyze(text[start:end], language=self.language, entities=self.entities,
                                           score_threshold=self.score_threshold):
                key = (r.entity_type, r.start + start, r.end + start)
                found[key] = max(found.get(key, 0.0), r.score)
        return [RecognizerResult(e, s, t, score) for (e, s, t), score in sorted(found.items())]

    def resolve(self, text: str, results: list) -> list[Detection]:
        """The spans presidio-anonymizer would replace (conflicts resolved, same-type neighbours merged)."""
        out = self.anonymizer.anonymize(text=text, analyzer_results=results, operators=self._keep)
        return sorted(Detection(i.start, i.end, i.entity_type) for i in out.items)

    def detect(self, text: str) -> list[Detection]:
        """Detections of one pass (no repeat), as :meth:`redact` replaces them."""
        results = self.analyze(text) if text else []
        return self.resolve(text, results) if results else []

    def redact(self, text: str) -> tuple[str, list[Detection]]:
        """(redacted text, the replaced spans as offsets into ``text``).

        Redaction repeats on its own output (at most ``passes`` times) while it still finds something:
        presidio's phone matcher can miss a number next to another one (it tries the longer run first),
        and finds it once the neighbour is replaced. A repeat pass analyzes only windows around the
        replacements of the pass before (``REPASS_MARGIN`` characters, widened to whitespace).
        """
        found: list[Detection] = []
        maps: list[_PassMap] = []
        spans = None
        for _ in range(self.passes):
            results = self.analyze(text, spans)
            if not results:
                break
            hits = self.resolve(text, results)
            parts, pos, shift, replaced = [], 0, 0, []
            for d in hits:
                token = f"<{d.entity}>"
                parts += [text[pos:d.start], token]
                new_start = d.start + shift
                replaced.append((d.start, d.end, new_start, new_start + len(token)))
                shift += len(token) - (d.end - d.start)
                pos = d.end
            parts.append(text[pos:])
            for d in hits:  # back to offsets of the original text through the earlier passes
                s, e = d.start, d.end
                for m in reversed(maps):
                    s, e = m.back(s, False), m.back(e, True)
                found.append(Detection(s, e, d.entity))
            maps.append(_PassMap(replaced))
            text = "".join(parts)
            around = _merge(sorted((_snap_left(text, r[2] - REPASS_MARGIN, SNAP_LIMIT),
                                    _snap_right(text, r[3] + REPASS_MARGIN, SNAP_LIMIT)) for r in replaced))
            spans = [c for start, end in around for c in self._chunks(start, end, text)]
        found.sort()
        return text, found


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of sorted intervals."""
    out: list[list[int]] = []
    for start, end in intervals:
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(max(0, s), e) for s, e in out]


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
