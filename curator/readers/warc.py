"""Common Crawl WARC reader: HTML response records -> documents whose text is the decoded HTML.

Text extraction is a later stage (``html_to_text``); this reader only finds the pages and decodes
their bytes. The charset comes from the HTTP ``Content-Type`` header, else from the page's own
``<meta charset>`` / ``http-equiv`` tag, else from detection (uchardet via resiliparse). Records that
are not documents are skipped and counted in ``ReadStats``: ``non_html`` (css, images, pdf...),
``http_status`` (not 2xx), ``non_http``, ``too_large``, ``truncated_record``, ``nul_bytes``,
``corrupt_record``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pyarrow as pa
from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5

from curator.readers.base import DEFAULT_MAX_DOC_BYTES, BatchBuilder, ReadStats
from curator.readers.warc_records import Record, iter_records
from curator.schema import make_id

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})

_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)
_SNIFF_BYTES = 4096
OPTION_DOCS: dict[str, str] = {
    "backend": "WARC parser: fastwarc (resiliparse, C++, resynchronises after a corrupt stretch) or warcio "
               "(pure Python)",
}


def read_warc(
    path: str,
    *,
    source: str | None = None,
    batch_size: int = 1000,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
    stats: ReadStats | None = None,
    backend: str = "fastwarc",
) -> Iterator[pa.Table]:
    """Stream the HTML responses of one WARC file (.warc, .warc.gz, .warc.zst) as core tables.

    ``id`` = make_id("warc", WARC-Record-ID); ``url`` = WARC-Target-URI; ``meta`` = JSON with
    warc_record_id, warc_date, warc_file, offset, http_status, content_type, charset,
    charset_source ("http", "meta", "detected") and encoding_detected (and ``warc_truncated`` or
    ``decode_errors`` when they apply).
    """
    stats = stats if stats is not None else ReadStats(path=path)
    stats.path = stats.path or path
    source = source or "warc"
    batch = BatchBuilder(batch_size)
    for rec in iter_records(path, stats, record_type="response", http=True,
                            max_doc_bytes=max_doc_bytes, backend=backend):
        row = response_row(rec, path, source, stats)
        if row is None:
            continue
        stats.records += 1
        if (table := batch.add(*row)) is not None:
            yield table
    if (table := batch.flush()) is not None:
        yield table


def response_row(rec: Record, path: str, source: str, stats: ReadStats) -> tuple | None:
    """(id, text, source, url, meta) for one response record, or None after counting a skip."""
    if rec.skip:
        stats.skip(rec.skip, rec.offset, rec.target_uri or "")
        return None
    if rec.status is None or not 200 <= rec.status < 300:
        stats.skip("http_status", rec.offset, f"{rec.status} {rec.target_uri}", logging.DEBUG)
        return None
    mime, http_charset = parse_content_type(rec.content_type)
    if mime not in HTML_TYPES:
        stats.skip("non_html", rec.offset, f"{mime} {rec.target_uri}", logging.DEBUG)
        return None
    body = rec.body or b""
    text, charset, charset_source, errors = decode_html(body, http_charset)
    if "\x00" in text:
        stats.skip("nul_bytes", rec.offset, rec.target_uri or "")
        return None
    meta = {
        "warc_record_id": rec.record_id,
        "warc_date": rec.date,
        "warc_file": path,
        "offset": rec.offset,
        "http_status": rec.status,
        "content_type": mime,
        "charset": charset,
        "charset_source": charset_source,
        "encoding_detected": charset_source == "detected",
    }
    if rec.truncated:
        meta["warc_truncated"] = rec.truncated
    if errors:
        meta["decode_errors"] = True
    doc_id = make_id("warc", rec.record_id or f"{path}@{rec.offset}")
    return doc_id, text, source, rec.target_uri, json.dumps(meta, ensure_ascii=False)


def parse_content_type(value: str | None) -> tuple[str, str | None]:
    """('text/html', 'utf-8') from 'text/html; charset=UTF-8'; charset mapped to a Python codec."""
    if not value:
        return "", None
    mime, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip().strip("\"'"):
            charset = map_encoding_to_html5(val.strip().strip("\"'"))
    return mime.strip().lower(), charset


def sniff_meta_charset(body: bytes) -> str | None:
    """The charset a page declares in its first 4 KiB (``<meta charset>`` or ``http-equiv``)."""
    m = _META_CHARSET.search(body, 0, _SNIFF_BYTES)
    return map_encoding_to_html5(m.group(1).decode("ascii")) if m else None


def decode_html(body: bytes, http_charset: str | None) -> tuple[str, str, str, bool]:
    """Decode an HTML payload: declared charset first, detection as fallback.

    Returns (text, charset, charset_source, had_errors). A page whose bytes do not fit any candidate
    is decoded with replacement characters (``had_errors``) rather than dropped.
    """
    tried: list[str] = []
    for charset, how in _charset_candidates(body, http_charset):
        if charset in tried:
            continue
        tried.append(charset)
        try:
            text = body.decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
        return _strip_bom(text), charset, how, False
    charset, how = next(_charset_candidates(body, http_charset))
    return _strip_bom(body.decode(charset, errors="replace")), charset, how, True


def _charset_candidates(body: bytes, http_charset: str | None) -> Iterator[tuple[str, str]]:
    """Declared charsets in order of authority, then detection (only computed when reached)."""
    if http_charset:
        yield http_charset, "http"
    if meta := sniff_meta_charset(body):
        yield meta, "meta"
    yield detect_encoding(body), "detected"


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text
