"""Common Crawl WET reader: ``conversion`` records (extracted plain text) -> documents.

A WET record refers to the WARC response it was extracted from (``WARC-Refers-To``); the document
id is derived from *that* record id, exactly as the WARC reader derives it, so one page has one id
whichever of the two files it was read from. Skips: ``invalid_utf8`` (WET text is UTF-8),
``nul_bytes``, ``too_large``, ``truncated_record``, ``corrupt_record``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pyarrow as pa

from curator.readers.base import DEFAULT_MAX_DOC_BYTES, BatchBuilder, ReadStats
from curator.readers.warc_records import iter_records
from curator.schema import make_id

OPTION_DOCS: dict[str, str] = {
    "backend": "WARC parser: fastwarc (resiliparse, C++, resynchronises after a corrupt stretch) or warcio "
               "(pure Python)",
}


def read_wet(
    path: str,
    *,
    source: str | None = None,
    batch_size: int = 1000,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
    stats: ReadStats | None = None,
    backend: str = "fastwarc",
) -> Iterator[pa.Table]:
    """Stream the conversion records of one WET file as core tables (text = the record's text).

    ``meta`` = JSON with warc_record_id, warc_refers_to, warc_date, warc_file, offset, and
    ``language`` when the file names one (Common Crawl's WARC-Identified-Content-Language).
    """
    stats = stats if stats is not None else ReadStats(path=path)
    stats.path = stats.path or path
    source = source or "wet"
    batch = BatchBuilder(batch_size)
    for rec in iter_records(path, stats, record_type="conversion", http=False,
                            max_doc_bytes=max_doc_bytes, backend=backend):
        if rec.skip:
            stats.skip(rec.skip, rec.offset, rec.target_uri or "")
            continue
        try:
            text = (rec.body or b"").decode("utf-8")
        except UnicodeDecodeError as exc:
            stats.skip("invalid_utf8", rec.offset, f"{rec.target_uri}: {exc}")
            continue
        if "\x00" in text:
            stats.skip("nul_bytes", rec.offset, rec.target_uri or "")
            continue
        meta = {
            "warc_record_id": rec.record_id,
            "warc_refers_to": rec.refers_to,
            "warc_date": rec.date,
            "warc_file": path,
            "offset": rec.offset,
        }
        if rec.language:
            meta["language"] = rec.language
        doc_id = (make_id("warc", rec.refers_to) if rec.refers_to
                  else make_id("wet", rec.record_id or f"{path}@{rec.offset}"))
        stats.records += 1
        row = (doc_id, text, source, rec.target_uri, json.dumps(meta, ensure_ascii=False))
        if (table := batch.add(*row)) is not None:
            yield table
    if (table := batch.flush()) is not None:
        yield table
