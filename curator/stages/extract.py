"""``html_to_text``: main-text extraction from raw HTML held in the ``text`` column.

``extractor: trafilatura`` (default, best quality) or ``extractor: resiliparse`` (Resiliparse's
``extract_plain_text`` with main-content detection, about 20x faster). The result is repaired with ftfy
(``fix_text`` limited to encoding and HTML-escape repair; quotes, widths, ligatures, line breaks and
Unicode normalization are left to ``normalize``). ftfy is slow, so it only runs on texts that show a hint
of mojibake (a Latin-1 lead byte character followed by a continuation-range or Windows-1252 character,
a C1 control character) or a character reference (``&...;``). The page's
``<title>`` and its language hints (``<html lang>``, ``<meta http-equiv="content-language">``) are merged
into the ``meta`` JSON object as ``title``, ``html_lang`` and ``content_language``.

Bounded work per document: only the first ``max_html_chars`` characters (default 1,000,000) of the HTML
are parsed; the head fields are searched in its first 65,536 characters. With ``strip_scripts`` (default)
the contents of ``<script>``, ``<style>``, ``<svg>``, ``<noscript>``, ``<template>`` elements and HTML
comments are cut with one regular expression before trafilatura parses the page: it deletes them from
its tree anyway, so the text is the same while lxml parses less (web pages often carry more script than
text). trafilatura's extraction options are built once per stage, not per page.

Speed settings for trafilatura (bench/bench_extract.py measures each against standard trafilatura):

- ``fast: true``: trafilatura's fast mode, without its fallback extractors (readability, jusText) and the
  recall retry; pages where only a fallback found text come out empty (``empty_extraction``).
- ``cascade: true``: cheap first. Each page is first extracted with Resiliparse (about 10x cheaper); a page
  whose cheap text has fewer than ``cascade_min_words`` words is dropped as ``cascade_short``, one whose
  probability of being in ``cascade_languages`` (fastText ``lid.176``, the sum over those languages, on the
  first 10,000 characters) is below ``cascade_lang_threshold`` is dropped as ``cascade_lang``; only the rest
  reaches trafilatura. The rules are looser than the recipe's own (language ID at 0.65, Gopher's 50 words)
  so that a page they drop would have been dropped later anyway; how often that holds is measured.

Drop reasons: ``not_html`` (binary content: NUL bytes, replacement or control characters make up more
than 5% of the first 4 KiB), ``extraction_error`` (the extractor raised; logged), ``empty_extraction``
(no text came out), ``cascade_short`` and ``cascade_lang`` (see above). trafilatura's cross-document
deduplication is off by default: it keeps a process-wide cache, so it would make a document's text depend
on which documents the same worker saw before.
"""

from __future__ import annotations

import html
import json
import logging
import re
from typing import ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from curator.paths import InputPath
from curator.stages.base import Column, Stage, StageConfig, set_column, set_drops

log = logging.getLogger("curator.stages.extract")

HEAD_CHARS = 65_536
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TAG_RE = re.compile(r"<html\b[^>]*>", re.IGNORECASE)
_META_TAG_RE = re.compile(r"<meta\b[^>]*>", re.IGNORECASE)
_ATTR_RE = re.compile(r"""([a-zA-Z:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_SPACE_RE = re.compile(r"\s+")
_BINARY_RE = re.compile(r"[\x00-\x08\x0e-\x1f\ufffd]")
_MOJIBAKE_HINT_RE = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]|[\u0080-\u009f]"
    "|&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
)
# elements whose content trafilatura deletes before extracting, and comments: cut before parsing
_STRIP_RE = re.compile(r"<(script|style|svg|noscript|template)\b[^>]*>.*?</\1\s*>|<!--.*?-->",
                       re.IGNORECASE | re.DOTALL)
CASCADE_LANG_CHARS = 10_000


class HtmlToTextConfig(StageConfig):
    extractor: Literal["trafilatura", "resiliparse"] = Field(
        "trafilatura", description="trafilatura (best quality) or resiliparse (main-content plain text, about 20x "
        "faster)")
    fix_text: bool = Field(True, description="repair mojibake and HTML escapes in the extracted text with ftfy (only "
                           "texts showing a hint of them)")
    max_html_chars: int = Field(1_000_000, ge=1, description="characters of HTML parsed per document (the rest is "
                                "ignored)")
    favor_precision: bool = Field(True, description="trafilatura: prefer less but cleaner text")
    include_tables: bool = Field(True, description="trafilatura: keep table text")
    deduplicate: bool = Field(False, description="trafilatura: cross-document segment dedup (stateful)")
    keep_head_meta: bool = Field(True, description="merge title and language hints into meta")
    fast: bool = Field(False, description="trafilatura: fast mode, no fallback extractors")
    strip_scripts: bool = Field(True, description="cut script/style/svg/noscript/template and comments first")
    cascade: bool = Field(False, description="Resiliparse + language ID + length first; trafilatura on the rest")
    cascade_languages: list[str] | None = Field(["en"], description="lid.176 language codes the cascade keeps "
                                                "(None: no language check)")
    cascade_lang_threshold: float = Field(0.3, ge=0, le=1, description="probability (0-1), summed over "
                                          "cascade_languages, below which the cascade drops a page (cascade_lang)")
    cascade_min_words: int | None = Field(25, ge=1, description="whitespace-separated words of the cheap text below "
                                          "which the cascade drops a page (cascade_short); None: off")
    cascade_model_path: InputPath | None = Field(None, description="fastText language-ID model (default: lid.176)")

    @model_validator(mode="after")
    def _cascade_needs_trafilatura(self) -> HtmlToTextConfig:
        if self.cascade and self.extractor != "trafilatura":
            raise ValueError("cascade puts Resiliparse in front of trafilatura: it needs extractor: trafilatura")
        return self


def _attrs(tag: str) -> dict[str, str]:
    return {m[0].lower(): m[1] or m[2] or m[3] for m in _ATTR_RE.findall(tag)}


def head_fields(page: str) -> dict[str, str]:
    """``title``, ``html_lang`` and ``content_language`` found in the page's head (absent ones left out)."""
    head = page[:HEAD_CHARS]
    out: dict[str, str] = {}
    m = _TITLE_RE.search(head)
    if m:
        title = _SPACE_RE.sub(" ", html.unescape(re.sub(r"<[^>]*>", "", m.group(1)))).strip()
        if title:
            out["title"] = title
    m = _HTML_TAG_RE.search(head)
    if m:
        attrs = _attrs(m.group())
        lang = attrs.get("lang") or attrs.get("xml:lang")
        if lang and lang.strip():
            out["html_lang"] = lang.strip()
    for tag in _META_TAG_RE.findall(head):
        attrs = _attrs(tag)
        if attrs.get("http-equiv", "").lower() == "content-language" and attrs.get("content", "").strip():
            out["content_language"] = attrs["content"].strip()
            break
    return out


def looks_binary(page: str) -> bool:
    """True when NUL/control/replacement characters make up more than 5% of the first 4096 characters."""
    sample = page[:4096]
    return bool(sample) and len(_BINARY_RE.findall(sample)) > 0.05 * len(sample)


def merge_meta(meta: str | None, fields: dict[str, str]) -> str | None:
    """``meta`` (a JSON object string) with ``fields`` added; other JSON is kept under ``source_meta``."""
    if not fields:
        return meta
    base: dict = {}
    if meta:
        try:
            parsed = json.loads(meta)
        except ValueError:
            parsed = meta
        base = parsed if isinstance(parsed, dict) else {"source_meta": parsed}
    base.update(fields)
    return json.dumps(base, ensure_ascii=False, sort_keys=True)


class HtmlToText(Stage[HtmlToTextConfig]):
    """Extract the main text from the raw HTML in ``text`` with trafilatura or Resiliparse.

    See the module docstring for the options, the cascade and the drop reasons.
    """

    name: ClassVar[str] = "html_to_text"
    writes: ClassVar[tuple[Column, ...]] = (
        Column("text", "the extracted main text (a dropped page keeps its HTML)"),
        Column("meta", "the source's meta with the page's title, html_lang and content_language added "
               "(keep_head_meta)"),
    )
    drop_reasons: ClassVar[dict[str, str]] = {
        "not_html": "binary content: NUL, control or replacement characters are over 5% of the first 4096 "
                    "characters",
        "extraction_error": "the extractor raised",
        "empty_extraction": "no text came out (or the page was empty)",
        "cascade_short": "the cheap extraction has fewer than cascade_min_words words",
        "cascade_lang": "the cheap extraction is below cascade_lang_threshold for cascade_languages",
    }

    def __init__(self, config: StageConfig | None = None, **params) -> None:
        super().__init__(config, **params)
        cfg = self.config
        from resiliparse.extract.html2text import extract_plain_text

        self._cheap = lambda page: extract_plain_text(
            page, main_content=True, alt_texts=False, links=False, noscript=False
        )
        if cfg.extractor == "trafilatura":
            import trafilatura
            from trafilatura.settings import Extractor

            options = Extractor(output_format="txt", fast=cfg.fast, precision=cfg.favor_precision,
                                comments=False, tables=cfg.include_tables, dedup=cfg.deduplicate)
            strip = _STRIP_RE.sub if cfg.strip_scripts else None

            def extract(page: str) -> str | None:
                return trafilatura.extract(strip("", page) if strip else page, options=options)

            self._extract = extract
        else:
            self._extract = self._cheap
        self._lid = None
        if cfg.cascade and cfg.cascade_languages is not None:
            from curator.stages.fasttext_model import FastTextModel, lid176_path

            self._lid = FastTextModel(cfg.cascade_model_path or lid176_path())
            self._langs = frozenset(cfg.cascade_languages)
        self._fix = None
        if cfg.fix_text:
            import ftfy

            ftfy_config = ftfy.TextFixerConfig(
                uncurl_quotes=False,
                fix_latin_ligatures=False,
                fix_character_width=False,
                fix_line_breaks=False,
                remove_control_chars=False,
                normalization=None,
                explain=False,
            )
            hint = _MOJIBAKE_HINT_RE.search
            self._fix = lambda text: ftfy.fix_text(text, config=ftfy_config) if hint(text) else text

    def columns(self) -> tuple[Column, ...]:
        return self.writes if self.config.keep_head_meta else self.writes[:1]

    def _prepare(self, page: str | None) -> tuple[str | None, str | None]:
        """(the page cut to ``max_html_chars``, or None with a drop reason)."""
        if not page:
            return None, "empty_extraction"
        page = page[: self.config.max_html_chars]
        if looks_binary(page):
            return None, "not_html"
        return page, None

    def cascade_reason(self, page: str) -> str | None:
        """The cascade's verdict on a prepared page: None (go on to trafilatura) or a drop reason."""
        from curator.stages.fasttext_model import prepare_text

        cfg = self.config
        try:
            cheap = self._cheap(page) or ""
        except Exception:  # the cheap extractor failing says nothing about the page: leave it to trafilatura
            return None
        if cfg.cascade_min_words is not None and len(cheap.split()) < cfg.cascade_min_words:
            return "cascade_short"
        if self._lid is not None:
            line = prepare_text(cheap, CASCADE_LANG_CHARS)
            p = sum(prob for lang, prob in self._lid.predict(line, 5) if lang in self._langs)
            if p < cfg.cascade_lang_threshold:
                return "cascade_lang"
        return None

    def extract(self, page: str | None) -> tuple[str | None, str | None]:
        """(text, drop reason) for one HTML page."""
        page, reason = self._prepare(page)
        if reason:
            return None, reason
        if self.config.cascade:
            reason = self.cascade_reason(page)
            if reason:
                return None, reason
        try:
            text = self._extract(page)
        except Exception as exc:  # a broken page must not stop the batch
            log.warning("extraction failed: %s: %s", type(exc).__name__, exc)
            return None, "extraction_error"
        if text and self._fix is not None:
            text = self._fix(text)
        if not text or not text.strip():
            return None, "empty_extraction"
        return text, None

    def __call__(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        pages = table.column("text").to_pylist()
        results = [self.extract(p) for p in pages]
        # A dropped page keeps its HTML (for rejected/); a kept one gets its text.
        texts = [page if reason else text for page, (text, reason) in zip(pages, results, strict=True)]
        table = set_column(table, "text", pa.array(texts, type=pa.string()))
        if cfg.keep_head_meta:
            metas = table.column("meta").to_pylist()
            merged = [merge_meta(m, head_fields(p) if p else {}) for m, p in zip(metas, pages, strict=True)]
            table = set_column(table, "meta", pa.array(merged, type=pa.string()))
        return set_drops(table, [reason for _, reason in results])
