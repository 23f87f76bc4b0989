"""PII redaction: each detected span is replaced by ``<ENTITY_TYPE>``.

Two engines:

- ``engine: fast`` (default): :mod:`curator.pii`. One multi-pattern pass (Hyperscan, or RE2) locates
  candidates of every type; each is checked exactly in Python: Luhn and the networks' issuer ranges for
  cards, mod-97 and the country's length for IBANs, address syntax (and with ``ip_ranges: public`` global
  routability) for IPv4/IPv6, the bundled public-suffix snapshot's TLDs for e-mail domains and URLs,
  ``phonenumbers`` metadata for phone numbers, the SSA's rules for US SSNs, and for secrets their formats
  (AWS access/secret keys, GitHub and Slack tokens, private-key blocks with a base64 body, JWTs whose
  header and payload decode to JSON). Entities: ``EMAIL_ADDRESS``, ``PHONE_NUMBER``, ``CREDIT_CARD``,
  ``IP_ADDRESS``, ``IBAN_CODE``, ``US_SSN``, ``AWS_ACCESS_KEY``, ``AWS_SECRET_KEY``, ``GITHUB_TOKEN``,
  ``SLACK_TOKEN``, ``PRIVATE_KEY``, ``JWT`` (the default set) and ``URL`` (opt-in). ``keep_domains``
  leaves e-mail addresses and URLs of those domains (and their subdomains) alone, e.g. ``example.com``.
- ``engine: presidio``: presidio-analyzer's pattern recognizers with a blank spaCy pipeline, nothing
  downloaded, behind a candidate pre-check (:mod:`curator.pii.presidio`); with ``spacy_model`` also its
  NER entities (PERSON, LOCATION).

Columns: ``pii_count`` (replaced spans), with ``count_columns`` one ``pii_<entity>`` count per configured
entity (e.g. ``pii_email_address``), with ``keep_spans`` ``pii_spans``: the replaced spans as
``{entity, start, end}`` character offsets into the text the stage received. The stage never drops a
document, except one longer than ``max_chars`` (dropped with reason ``pii_too_long``; default: no cap for
the fast engine, whose time is linear, 1,000,000 characters for presidio).

Without ``engine``, a config that sets one of presidio's options (``spacy_model``, ``passes``,
``cache_dir``, ...) selects presidio, so specs written for the presidio stage keep their meaning. Options
of the other engine are refused when they differ from their defaults (``matcher: re2`` with ``engine:
presidio`` is an error, not ignored; a dumped config with every default passes).
Engines are built once per worker process and configuration, never per batch.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from curator.paths import ModelRef, OutputDir
from curator.pii import ALL_ENTITIES, Options, get_engine
from curator.pii import DEFAULT_ENTITIES as FAST_ENTITIES
from curator.pii.presidio import (  # noqa: F401  (re-exported: the stage's presidio helpers)
    DEFAULT_ENTITIES,
    NER_ENTITIES,
    PresidioEngine,
    blank_pipeline_path,
    use_bundled_suffix_list,
)
from curator.stages.base import Column, Stage, StageConfig, set_column, set_drops

PRESIDIO_MAX_CHARS = 1_000_000
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")  # presidio's phone regions
FAST_ONLY = ("matcher", "ip_ranges", "keep_domains", "phone_regions")
PRESIDIO_ONLY = ("score_threshold", "spacy_model", "language", "precheck", "passes", "window_margin",
                 "chunk_chars", "cache_dir")
SPAN_TYPE = pa.list_(pa.struct([("entity", pa.string()), ("start", pa.int32()), ("end", pa.int32())]))


class PiiConfig(StageConfig):
    """``engine``, ``entities`` (None: the engine's defaults), ``max_chars``, ``count_columns``,
    ``keep_spans``; fast engine: ``matcher``, ``ip_ranges``, ``keep_domains``, ``phone_regions``; presidio:
    ``score_threshold`` (phone numbers score 0.4, validated cards/IBANs/e-mails 1.0), ``spacy_model``,
    ``language``, ``precheck``, ``passes``, ``window_margin``, ``chunk_chars``, ``cache_dir`` (where the
    blank pipeline is saved). See the module docstring and :mod:`curator.pii.presidio`."""

    engine: Literal["fast", "presidio"] = Field(
        "fast", description="fast: one Hyperscan/RE2 pass with exact validators; presidio: presidio-analyzer "
        "(needed for NER entities); unset, a presidio option selects presidio")
    entities: list[str] | None = Field(
        None, description="entity types to find and replace (None: the engine's defaults; fast: every type but "
        "URL; presidio: EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IP_ADDRESS, IBAN_CODE, US_SSN)")
    max_chars: int | None = Field(None, ge=1, description="characters above which a document is dropped unredacted "
                                  "(pii_too_long); default: no cap for fast, 1,000,000 for presidio")
    count_columns: bool = Field(True, description="also write one pii_<entity> count column per configured entity")
    keep_spans: bool = Field(False, description="also write pii_spans: the replaced spans as {entity, start, end} "
                             "character offsets into the text the stage received")
    # fast engine
    matcher: Literal["auto", "hyperscan", "re2", "python"] = Field(
        "auto", description="fast engine: what runs the candidate patterns (auto: hyperscan if installed, else "
        "re2, else python, the slowest)")
    ip_ranges: Literal["all", "public"] = Field("all", description="fast engine: all: every valid IPv4/IPv6 "
                                                "address; public: only globally routable ones")
    keep_domains: list[str] = Field(default_factory=list, description="fast engine: e-mail addresses and URLs of "
                                    "these domains (and their subdomains) are left alone")
    phone_regions: list[str] = Field(default_factory=lambda: list(PHONE_REGIONS), description="fast engine: "
                                     "regions (ISO 3166 alpha-2) whose national phone numbers are found; "
                                     "international (+) numbers are found anywhere")
    # presidio engine
    score_threshold: float = Field(0.4, ge=0, le=1, description="presidio: lowest recognizer score (0-1) of a "
                                   "replaced span (phone numbers score 0.4; validated cards, IBANs, e-mails 1.0)")
    spacy_model: ModelRef | None = Field(None, description="presidio: installed spaCy pipeline (name or path) with "
                                         "NER, adding PERSON and LOCATION (None: a blank pipeline, patterns only)")
    language: str = Field("en", description="presidio: language code of the recognizers and the blank pipeline")
    precheck: bool = Field(True, description="presidio: analyze only windows around cheap candidate matches (same "
                           "results, faster)")
    passes: int = Field(3, ge=1, le=10, description="presidio: redaction passes at most, repeated on the output "
                        "while they still find something")
    window_margin: int = Field(32, ge=0, le=250, description="presidio: characters analyzed on each side of a "
                               "candidate match (at least 100 with spacy_model)")
    chunk_chars: int = Field(100_000, ge=2_000, description="presidio: characters per analyzed chunk of a long "
                             "text or window")
    cache_dir: OutputDir | None = Field(None, description="presidio: folder where the blank spaCy pipeline is "
                                        "saved (default: $CURATOR_CACHE_DIR or ~/.cache/curator)")

    @model_validator(mode="before")
    @classmethod
    def _engine_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "engine" not in data and any(k in data for k in PRESIDIO_ONLY):
            data = {**data, "engine": "presidio"}  # a spec written for the presidio stage keeps its meaning
        if "max_chars" not in data and data.get("engine") == "presidio":
            data = {**data, "max_chars": PRESIDIO_MAX_CHARS}
        return data

    @model_validator(mode="after")
    def _options_of_the_engine(self) -> PiiConfig:
        other = PRESIDIO_ONLY if self.engine == "fast" else FAST_ONLY
        fields = type(self).model_fields
        wrong = sorted(f for f in set(other) & self.model_fields_set
                       if getattr(self, f) != fields[f].get_default(call_default_factory=True))
        if wrong:
            raise ValueError(f"{', '.join(wrong)} do not apply to engine {self.engine!r}")
        if self.engine == "fast" and self.entities is not None:
            unknown = [e for e in self.entities if e not in ALL_ENTITIES]
            if unknown:
                raise ValueError(f"engine 'fast' has no entity {unknown} (it has {list(ALL_ENTITIES)}; "
                                 "NER entities such as PERSON need engine: presidio with a spacy_model)")
        return self


def count_column(entity: str) -> str:
    return f"pii_{entity.lower()}"


@functools.lru_cache(maxsize=4)
def _presidio(entities: tuple[str, ...] | None, score_threshold: float, spacy_model: str | None, language: str,
              precheck: bool, passes: int, window_margin: int, chunk_chars: int,
              cache_dir: str | None) -> PresidioEngine:
    return PresidioEngine(list(entities) if entities is not None else None, score_threshold, spacy_model,
                          language, precheck, passes, window_margin, chunk_chars, cache_dir)


class PiiRedact(Stage[PiiConfig]):
    """Replace PII (e-mail addresses, phone numbers, cards, IBANs, IPs, secrets) with ``<ENTITY_TYPE>`` tokens.

    Writes ``pii_count`` (and per-entity counts); see the module docstring for the engines.
    """

    name: ClassVar[str] = "pii"
    stateful: ClassVar[bool] = True
    writes: ClassVar[tuple[Column, ...]] = (Column("text", "the text with each span found replaced by its token"),
                                            Column("pii_count", "spans replaced in the text"))
    drop_reasons: ClassVar[dict[str, str]] = {"pii_too_long": "text longer than max_chars"}

    def __init__(self, config: PiiConfig | None = None, **params) -> None:
        super().__init__(config, **params)
        cfg = self.config
        if cfg.engine == "fast":
            options = Options(public_ip_only=cfg.ip_ranges == "public",
                              keep_domains=tuple(d.lower().strip(".") for d in cfg.keep_domains),
                              phone_regions=tuple(r.upper() for r in cfg.phone_regions))
            self.engine: Any = get_engine(tuple(cfg.entities or FAST_ENTITIES), options, cfg.matcher)
        else:
            self.engine = _presidio(tuple(cfg.entities) if cfg.entities is not None else None,
                                    cfg.score_threshold, cfg.spacy_model, cfg.language, cfg.precheck, cfg.passes,
                                    cfg.window_margin, cfg.chunk_chars, cfg.cache_dir)
        self.entities: list[str] = list(self.engine.entities)

    def columns(self) -> tuple[Column, ...]:
        cols = list(self.writes)
        if self.config.count_columns:
            cols += [Column(count_column(e), f"{e} spans replaced") for e in self.entities]
        if self.config.keep_spans:
            cols.append(Column("pii_spans", "replaced spans: entity, start, end (offsets into the input)"))
        return tuple(cols)

    def redact(self, text: str) -> tuple[str, int]:
        """(redacted text, number of replaced spans)."""
        out, found = self.engine.redact(text)
        return out, len(found)

    def __call__(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        cap = cfg.max_chars
        texts, counts, reasons, spans = [], [], [], []
        per_type: dict[str, list[int | None]] = {e: [] for e in self.entities} if cfg.count_columns else {}
        for text in table.column("text").to_pylist():
            if text and cap is not None and len(text) > cap:
                texts.append(text)
                counts.append(None)
                reasons.append("pii_too_long")
                spans.append(None)
                for col in per_type.values():
                    col.append(None)
                continue
            redacted, found = self.engine.redact(text) if text else (text, [])
            texts.append(redacted)
            counts.append(len(found))
            reasons.append(None)
            if cfg.keep_spans:
                spans.append([{"entity": d.entity, "start": d.start, "end": d.end} for d in found])
            if per_type:
                for col in per_type.values():
                    col.append(0)
                for d in found:
                    col = per_type.get(d.entity)
                    if col is not None:
                        col[-1] += 1
        table = set_column(table, "text", pa.array(texts, type=pa.string()))
        table = set_column(table, "pii_count", pa.array(counts, type=pa.int32()))
        for entity, values in per_type.items():
            table = set_column(table, count_column(entity), pa.array(values, type=pa.int32()))
        if cfg.keep_spans:
            table = set_column(table, "pii_spans", pa.array(spans, type=SPAN_TYPE))
        return set_drops(table, reasons)
