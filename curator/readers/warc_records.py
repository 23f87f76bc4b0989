"""WARC record streams shared by the WARC and WET readers, with two interchangeable parsers.

``fastwarc`` (resiliparse, C++) is the default and the one we ship: iterating the bundled sample's
records and reading every payload takes it about a quarter of ``warcio``'s CPU time, and the whole
WARC reader about half (bench/results/readers.md). ``warcio`` (pure Python) stays as a second
backend so the two can be compared on the same reader code and cross-checked in tests.

Both hand the readers plain :class:`Record` values, never a parser object, so everything that can
fail inside a parser (corrupt gzip member, bad header, short record) is caught here and turned into
a counted skip. The fastwarc stream additionally *resynchronises* after a corrupt stretch: it scans
the raw file for the next gzip member / zstd frame / ``WARC/1.`` line after the last good record and
restarts there, so the good records after a bad one are still read.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from curator.readers.base import ReadStats
from curator.readers.io import find_marker, open_raw, sniff_compression

BACKENDS = ("fastwarc", "warcio")
_MAX_HEADER = 32 << 10
_MARKERS = {"gzip": b"\x1f\x8b\x08", "zstd": b"\x28\xb5\x2f\xfd", None: b"WARC/1."}


@dataclass(slots=True)
class Record:
    """One WARC record of a wanted type, fully read (or skipped with a reason)."""

    offset: int  # start of the record in the stored file (compressed offset for .gz members)
    record_id: str
    target_uri: str | None
    date: str | None
    truncated: str | None  # the WARC-Truncated header, when the crawler cut the payload
    status: int | None  # HTTP status (HTTP records only)
    content_type: str | None  # HTTP Content-Type header (HTTP records), else WARC Content-Type
    body: bytes | None  # HTTP payload or record block; None when skipped
    skip: str | None = None  # reason, when the record could not be read
    refers_to: str | None = None  # WARC-Refers-To (WET conversion records point at their response)
    language: str | None = None  # WARC-Identified-Content-Language (Common Crawl WET)


def iter_records(
    path: str,
    stats: ReadStats,
    *,
    record_type: str,
    http: bool,
    max_doc_bytes: int,
    backend: str = "fastwarc",
) -> Iterator[Record]:
    """Yield the records of ``record_type`` ("response", "conversion", ...) in ``path``.

    ``http``: parse the block as an HTTP message (status, headers, payload). A record larger than
    ``max_doc_bytes`` is not read into memory (``skip="too_large"``); one whose block ends early is
    ``skip="truncated_record"``. Corrupt stretches are counted as ``corrupt_record`` in ``stats``.
    """
    if backend == "fastwarc":
        yield from _fastwarc(path, stats, record_type, http, max_doc_bytes)
    elif backend == "warcio":
        yield from _warcio(path, stats, record_type, http, max_doc_bytes)
    else:
        raise ValueError(f"unknown WARC backend {backend!r}: choose one of {BACKENDS}")


# --------------------------------------------------------------------------------------- fastwarc


def _fastwarc(path: str, stats: ReadStats, wanted: str, http: bool, max_bytes: int) -> Iterator[Record]:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    wanted_type = getattr(WarcRecordType, wanted)
    raw = open_raw(path)
    try:
        marker = _MARKERS[sniff_compression(raw.read(4))]
        start, last, counted = 0, -1, False
        pending: Record | None = None  # held back until the record after it parses
        while True:
            raw.seek(start)
            it = ArchiveIterator(raw, parse_http=False, auto_decode="none", stream_detect=True)
            try:
                for rec in it:
                    last, counted = rec.stream_pos, False
                    if pending is not None:
                        yield pending
                        pending = None
                    if rec.record_type == wanted_type:
                        pending = _fastwarc_record(rec, http, max_bytes)
                if pending is not None:
                    yield pending
                return
            except (OSError, ValueError, EOFError) as exc:
                error = exc
                if pending is not None:
                    # The failure may be this record's own fault (a wrong Content-Length runs into,
                    # or stops short of, the next record): keep it only if its framing checks out.
                    if pending.skip is None and not _framing_ok(path, pending.offset):
                        pending.skip, pending.body = "bad_length", None
                    yield pending
                    pending = None
            nxt = find_marker(raw, max(start, last) + 1, marker)
            # Count one skip per corrupt stretch: a restart that fails before any good record is
            # still inside the stretch already counted.
            if not counted:
                where = f"after the record at {last}" if last >= 0 else "at the start"
                resume = f"resuming at {nxt}" if nxt is not None else "no record after it"
                stats.skip("corrupt_record", max(last, 0), f"bad data {where}, {resume}: {error}")
                counted = True
            if nxt is None:
                return
            start = nxt
    finally:
        raw.close()


def _framing_ok(path: str, offset: int) -> bool:
    """Whether the record at ``offset`` ends exactly where its Content-Length says (then CRLFCRLF).

    Reads only that record through a fresh handle, decompressing just its own gzip member or zstd
    frame, so a corrupt neighbour cannot make a sound record look bad.
    """
    raw = open_raw(path)
    try:
        raw.seek(offset)
        data = b""
        end = length = None
        for chunk in _one_member(raw):
            data += chunk
            if end is None:
                end = data.find(b"\r\n\r\n")
                if end < 0:
                    if len(data) > _MAX_HEADER:
                        return False
                    end = None
                    continue
                length = _content_length(data[:end])
                if length is None:
                    return False
            if len(data) >= end + 4 + length + 4:
                break
        if end is None or length is None or not data.startswith(b"WARC/"):
            return False
        return data[end + 4 + length:end + 4 + length + 4] == b"\r\n\r\n"
    except (OSError, EOFError, ValueError, zlib.error):
        return False
    finally:
        raw.close()


def _one_member(raw: IO[bytes], chunk: int = 1 << 16) -> Iterator[bytes]:
    """Decompressed bytes of the single gzip member / zstd frame at the stream's position (or the
    raw bytes onward when uncompressed)."""
    first = raw.read(chunk)
    kind = sniff_compression(first)
    if kind is None:
        yield first
        while data := raw.read(chunk):
            yield data
        return
    if kind == "gzip":
        d = zlib.decompressobj(wbits=31)
    else:
        import zstandard

        d = zstandard.ZstdDecompressor().decompressobj()
    data = first
    while data:
        yield d.decompress(data)
        if d.eof:
            return
        data = raw.read(chunk)


def _content_length(header_block: bytes) -> int | None:
    for line in header_block.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            value = value.strip()
            return int(value) if value.isdigit() else None
    return None


def _fastwarc_record(rec, http: bool, max_bytes: int) -> Record:
    h = rec.headers
    out = Record(
        offset=rec.stream_pos, record_id=rec.record_id or "", target_uri=_uri(h.get("WARC-Target-URI")),
        date=h.get("WARC-Date"), truncated=h.get("WARC-Truncated"), status=None,
        content_type=h.get("Content-Type"), body=None, refers_to=h.get("WARC-Refers-To"),
        language=h.get("WARC-Identified-Content-Language"),
    )
    if http:
        if not rec.is_http:
            out.skip = "non_http"
            return out
        rec.parse_http(auto_decode="all")  # undo chunked transfer and gzip/br content encodings
        hh = rec.http_headers
        out.status = hh.status_code if hh is not None else None
        out.content_type = hh.get("Content-Type") if hh is not None else None
        encoded = hh is not None and ("Content-Encoding" in hh or "Transfer-Encoding" in hh)
    else:
        encoded = False
    expected = rec.content_length
    if expected > max_bytes:
        rec.reader.consume()
        out.skip = "too_large"
        return out
    body = rec.reader.read()
    if len(body) < expected and not encoded:  # decoded payloads have another length
        out.skip = "truncated_record"
        return out
    out.body = body
    return out


def _uri(value: str | None) -> str | None:
    """WARC/1.1 drafts (and wget) wrap WARC-Target-URI in <...>; strip them as warcio does."""
    if value and value.startswith("<") and value.endswith(">"):
        return value[1:-1]
    return value


# ----------------------------------------------------------------------------------------- warcio


def _warcio(path: str, stats: ReadStats, wanted: str, http: bool, max_bytes: int) -> Iterator[Record]:
    from warcio.archiveiterator import ArchiveIterator

    raw = open_raw(path)
    try:
        it = ArchiveIterator(raw, ensure_http_headers=False)
        offset = 0
        try:
            for rec in it:
                if rec.rec_type != wanted:
                    continue
                out = _warcio_record(rec, http, max_bytes)
                # warcio knows a record's offset only once it has been read to the end
                out.offset = offset = it.get_record_offset()
                yield out
        except Exception as exc:  # warcio raises assorted types on corrupt input; it cannot resume
            stats.skip("corrupt_record", offset, f"{type(exc).__name__}: {exc}")
    finally:
        raw.close()


def _warcio_record(rec, http: bool, max_bytes: int) -> Record:
    h = rec.rec_headers
    out = Record(
        offset=-1, record_id=h.get_header("WARC-Record-ID") or "",
        target_uri=h.get_header("WARC-Target-URI"), date=h.get_header("WARC-Date"),
        truncated=h.get_header("WARC-Truncated"), status=None,
        content_type=h.get_header("Content-Type"), body=None,
        refers_to=h.get_header("WARC-Refers-To"),
        language=h.get_header("WARC-Identified-Content-Language"),
    )
    stream: IO[bytes] = rec.content_stream() if http else rec.raw_stream
    if http:
        if rec.http_headers is None:
            out.skip = "non_http"
            return out
        code = rec.http_headers.get_statuscode()
        out.status = int(code) if code and code.isdigit() else None
        out.content_type = rec.http_headers.get_header("Content-Type")
    body = stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        while stream.read(1 << 20):
            pass
        out.skip = "too_large"
        return out
    out.body = body
    return out
