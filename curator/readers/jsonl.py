"""JSON-lines reader: The Pile's ``jsonl.zst`` and plain ``.jsonl`` / ``.jsonl.gz``.

One JSON object per line. The text comes from ``text_field``; every other field is kept in ``meta``
(a Pile line's nested ``meta`` object is flattened into it), plus ``file`` and ``line``. A Pile line's
``meta.pile_set_name`` sets ``source`` to ``pile/<set name>`` unless ``source`` is given.

Lines are read with a length limit, so a runaway line never sits whole in memory. Problems are
counted skips (``ReadStats``) naming the file and the line's byte offset in the decompressed stream:
``too_large``, ``nul_bytes``, ``invalid_utf8``, ``invalid_json``, ``not_object``, ``missing_text``,
``empty_line`` (logged at debug level), ``corrupt_stream`` (truncated or damaged gzip/zstd: every
complete line before the damage is kept).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pyarrow as pa

from curator.readers.base import DEFAULT_MAX_DOC_BYTES, BatchBuilder, ReadStats
from curator.readers.io import decompressed, open_raw
from curator.schema import make_id

_READ_CHUNK = 1 << 20
OPTION_DOCS: dict[str, str] = {
    "text_field": "field holding the document text; a line without a string there is a missing_text skip",
    "id_field": "field whose value identifies the record in the document id (default, or when a line lacks it: "
                "the 1-based line number)",
    "url_field": "field holding the document URL (null when absent or not a string)",
    "file_key": ("name of the file in document ids instead of its path (by default the path relative to the "
                 "working directory when the file lies under it, else the absolute path)"),
}
UTF8_BOM = b"\xef\xbb\xbf"


def _stdlib_loads(line: bytes):
    """json.loads with orjson's strictness: a lone surrogate escape is invalid JSON here too (it
    could not be stored as UTF-8)."""
    obj = json.loads(line.decode("utf-8"))
    json.dumps(obj, ensure_ascii=False).encode("utf-8")  # UnicodeEncodeError is a ValueError
    return obj


try:  # orjson parses UTF-8 bytes directly, several times faster than the standard library
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - the fallback is tested by patching it in
    _loads = _stdlib_loads


def _stream_errors() -> tuple[type[BaseException], ...]:
    import zstandard

    return (EOFError, OSError, zstandard.ZstdError)


def read_jsonl(
    path: str,
    *,
    source: str | None = None,
    batch_size: int = 1000,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
    stats: ReadStats | None = None,
    text_field: str = "text",
    id_field: str | None = None,
    url_field: str = "url",
    file_key: str | None = None,
) -> Iterator[pa.Table]:
    """Stream one JSON-lines file (plain, gzip or zstd, told apart by magic bytes) as core tables.

    Lines are parsed with orjson when it is installed, else with the standard library.

    ``id`` = make_id(file_key or path, the line's ``id_field`` value or else its 1-based line number).
    """
    stats = stats if stats is not None else ReadStats(path=path)
    stats.path = stats.path or path
    key = file_key or path
    batch = BatchBuilder(batch_size)
    errors = _stream_errors()
    raw = open_raw(path)
    try:
        lines = split_lines(decompressed(raw), max_doc_bytes)
        line_no, end = 0, 0
        try:
            for start, line in lines:
                line_no += 1
                if line_no == 1 and line is not None and line.startswith(UTF8_BOM):
                    line = line[len(UTF8_BOM):]  # a byte-order mark is not part of the first line's JSON
                if line is None:
                    stats.skip("too_large", start, f"line {line_no} longer than {max_doc_bytes} bytes")
                    continue
                end = start + len(line) + 1
                row = _parse_line(line, line_no, start, key, path, source, text_field, id_field,
                                  url_field, stats)
                if row is None:
                    continue
                stats.records += 1
                if (table := batch.add(*row)) is not None:
                    yield table
        except errors as exc:
            stats.skip("corrupt_stream", end, f"after line {line_no}: {type(exc).__name__}: {exc}")
    finally:
        raw.close()
    if (table := batch.flush()) is not None:
        yield table


def split_lines(stream, max_len: int, chunk: int = _READ_CHUNK) -> Iterator[tuple[int, bytes | None]]:
    """(offset, line without its newline) for each line of a binary stream; ``None`` for a line
    longer than ``max_len``, which is never held in memory whole. Read errors propagate after every
    complete line before them has been yielded.
    """
    start, pos, parts, held, skipping = 0, 0, [], 0, False
    read = getattr(stream, "read1", stream.read)  # one raw read at a time: nothing lost to an error
    while data := read(chunk):
        cur = pos
        pos += len(data)
        pieces = data.split(b"\n")
        for piece in pieces[:-1]:
            if skipping:
                yield start, None
                skipping = False
            elif parts:
                parts.append(piece)
                line = b"".join(parts)
                parts, held = [], 0
                yield start, line if len(line) <= max_len else None
            else:
                yield start, piece if len(piece) <= max_len else None
            cur += len(piece) + 1
            start = cur
        tail = pieces[-1]
        if tail and not skipping:
            parts.append(tail)
            held += len(tail)
            if held > max_len:
                parts, held, skipping = [], 0, True
    if skipping:
        yield start, None
    elif parts:
        line = b"".join(parts)
        yield start, line if len(line) <= max_len else None


def _parse_line(
    line: bytes, line_no: int, offset: int, key: str, path: str, source: str | None,
    text_field: str, id_field: str | None, url_field: str, stats: ReadStats,
) -> tuple | None:
    """(id, text, source, url, meta) for one line, or None after counting a skip."""
    if line.isspace() or not line:
        stats.skip("empty_line", offset, f"line {line_no}", logging.DEBUG)
        return None
    if b"\x00" in line:
        stats.skip("nul_bytes", offset, f"line {line_no}")
        return None
    escaped_nul = b"\\u0000" in line
    try:
        obj = _loads(line)
    except ValueError as exc:  # json.JSONDecodeError, orjson.JSONDecodeError, UnicodeDecodeError
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            stats.skip("invalid_utf8", offset, f"line {line_no}: {bad}")
            return None
        stats.skip("invalid_json", offset, f"line {line_no}: {exc}")
        return None
    if not isinstance(obj, dict):
        stats.skip("not_object", offset, f"line {line_no}: {type(obj).__name__}")
        return None
    text = obj.get(text_field)
    if not isinstance(text, str):
        stats.skip("missing_text", offset, f"line {line_no}: no string field {text_field!r}")
        return None
    if escaped_nul and "\x00" in text:
        stats.skip("nul_bytes", offset, f"line {line_no}")
        return None
    meta: dict = {}
    nested = obj.get("meta")
    if isinstance(nested, dict):
        meta.update(nested)
    for k, v in obj.items():
        if k != text_field and not (k == "meta" and isinstance(v, dict)):
            meta[k] = v
    meta["file"], meta["line"] = path, line_no
    record_key = obj.get(id_field) if id_field else None
    if record_key is None:
        record_key = line_no
    if source is None:
        set_name = meta.get("pile_set_name")
        source = f"pile/{set_name}" if isinstance(set_name, str) and set_name else "jsonl"
    url = obj.get(url_field)
    return (make_id(key, record_key), text, source, url if isinstance(url, str) else None,
            json.dumps(meta, ensure_ascii=False, default=str))
