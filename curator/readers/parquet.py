"""Parquet reader: a configurable text column (and optional id / url / meta columns) -> documents.

Streams record batches with ``ParquetFile.iter_batches`` (only the needed columns are read), so
memory stays at one batch whatever the file size. Row checks are vectorized with pyarrow compute.
Skips: ``missing_text`` (null), ``too_large``, ``nul_bytes``, ``invalid_utf8`` (binary text column),
``missing_column`` / ``corrupt_file`` (the whole file), ``corrupt_stream`` (a damaged row group:
the rows before it are kept).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curator.readers.base import DEFAULT_MAX_DOC_BYTES, ReadStats
from curator.readers.io import open_raw
from curator.schema import CORE_SCHEMA, make_id

OPTION_DOCS: dict[str, str] = {
    "text_column": "column holding the document text, string or binary (a file without it is a missing_column "
                   "skip; bytes that are not UTF-8 are invalid_utf8 skips)",
    "id_column": "column whose value identifies the row in the document id (default, or where it is null: the "
                 "0-based row number)",
    "url_column": "column holding the document URL (default: no URL)",
    "meta_columns": "columns kept in the `meta` JSON, beside `file` and `row`",
    "file_key": ("name of the file in document ids instead of its path (by default the path relative to the "
                 "working directory when the file lies under it, else the absolute path)"),
}


def read_parquet(
    path: str,
    *,
    source: str | None = None,
    batch_size: int = 1000,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
    stats: ReadStats | None = None,
    text_column: str = "text",
    id_column: str | None = None,
    url_column: str | None = None,
    meta_columns: Sequence[str] = (),
    file_key: str | None = None,
) -> Iterator[pa.Table]:
    """Stream one Parquet file as core tables.

    ``id`` = make_id(file_key or path, the row's ``id_column`` value or else its 0-based row number);
    ``meta`` = JSON of ``meta_columns`` plus ``file`` and ``row``.
    """
    stats = stats if stats is not None else ReadStats(path=path)
    stats.path = stats.path or path
    key, source = file_key or path, source or "parquet"
    raw = open_raw(path)
    try:
        try:
            pf = pq.ParquetFile(raw)
        except (pa.ArrowException, OSError) as exc:
            stats.skip("corrupt_file", 0, f"{type(exc).__name__}: {exc}")
            return
        yield from read_batches(pf.schema_arrow, pf.metadata.num_rows,
                                lambda columns: pf.iter_batches(batch_size=batch_size, columns=columns),
                                path=path, key=key, source=source, stats=stats, text_column=text_column,
                                id_column=id_column, url_column=url_column, meta_columns=meta_columns,
                                max_doc_bytes=max_doc_bytes)
    finally:
        raw.close()


def read_batches(
    schema: pa.Schema, num_rows: int | None, batches_of: Callable[[list[str]], Iterator[pa.RecordBatch]], *,
    path: str, key: str, source: str, stats: ReadStats, text_column: str, id_column: str | None,
    url_column: str | None, meta_columns: Sequence[str], max_doc_bytes: int,
) -> Iterator[pa.Table]:
    """The columnar readers' shared part: check the named columns against ``schema``, then turn each batch
    of ``batches_of(columns)`` into core rows (``num_rows``: the file's rows, for the skip counts)."""
    names = set(schema.names)
    wanted = [c for c in (text_column, id_column, url_column, *meta_columns) if c]
    if missing := [c for c in wanted if c not in names]:
        stats.skip("missing_column", 0, f"no column(s) {missing} (has {sorted(names)})")
        return
    text_type = schema.field(text_column).type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)
            or pa.types.is_binary(text_type) or pa.types.is_large_binary(text_type)):
        rows = _rows(num_rows, batches_of, text_column)
        stats.skip("bad_text_column", 0, f"column {text_column!r} holds {text_type}, not text: "
                   f"{rows} rows skipped", count=rows)
        return
    for label, name in (("id", id_column), ("url", url_column)):
        kind = schema.field(name).type if name else None
        if kind is not None and pa.types.is_nested(kind):
            rows = _rows(num_rows, batches_of, text_column)
            stats.skip(f"bad_{label}_column", 0, f"column {name!r} holds {kind}, not a scalar: "
                       f"{rows} rows skipped", count=rows)
            return
    row0 = 0
    batches = batches_of(list(dict.fromkeys(wanted)))
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            break
        except (pa.ArrowException, OSError) as exc:
            stats.skip("corrupt_stream", row0, f"row {row0}: {type(exc).__name__}: {exc}")
            break
        table = _to_core(pa.Table.from_batches([batch]), row0, path, key, source, text_column,
                         id_column, url_column, meta_columns, max_doc_bytes, stats)
        row0 += batch.num_rows
        if table.num_rows:
            stats.records += table.num_rows
            yield table


def _rows(num_rows: int | None, batches_of: Callable[[list[str]], Iterator[pa.RecordBatch]], column: str) -> int:
    """The file's row count: given, or counted over one column's batches (an IPC stream has no footer)."""
    if num_rows is not None:
        return num_rows
    try:
        return sum(b.num_rows for b in batches_of([column]))
    except (pa.ArrowException, OSError):
        return 0


def _to_core(
    t: pa.Table, row0: int, path: str, key: str, source: str, text_column: str,
    id_column: str | None, url_column: str | None, meta_columns: Sequence[str],
    max_doc_bytes: int, stats: ReadStats,
) -> pa.Table:
    n = t.num_rows
    rows = pa.array(range(row0, row0 + n), pa.int64())
    text, invalid = _as_utf8(t.column(text_column), row0, stats)
    nbytes = pc.binary_length(text)
    reasons = [
        ("missing_text", pc.is_null(text)),
        ("too_large", pc.fill_null(pc.greater(nbytes, max_doc_bytes), False)),
    ]
    if _may_hold_nul(text):  # the exact per-row scan only when a NUL byte is in the data at all
        reasons.append(("nul_bytes", pc.fill_null(pc.match_substring(text, "\x00"), False)))
    keep = pa.array([i not in invalid for i in range(n)], pa.bool_())
    for reason, bad in reasons:
        bad = pc.and_(bad, keep)  # each row counted once, under its first reason
        for i in pc.indices_nonzero(bad).to_pylist():
            stats.skip(reason, row0 + i, f"row {row0 + i}")
        keep = pc.and_(keep, pc.invert(bad))
    if id_column:
        ids_src = _lenient_strings(t.column(id_column)).to_pylist()
    else:
        ids_src = [None] * n
    row_list = rows.to_pylist()
    ids = [make_id(key, k if k is not None else r) for k, r in zip(ids_src, row_list, strict=True)]
    meta_src = {c: t.column(c).to_pylist() for c in meta_columns}
    metas = []
    for i, r in enumerate(row_list):
        m = {c: v[i] for c, v in meta_src.items()}
        m["file"], m["row"] = path, r
        metas.append(json.dumps(m, ensure_ascii=False, default=str))
    url = _lenient_strings(t.column(url_column)) if url_column else pa.nulls(n, pa.string())
    out = pa.Table.from_arrays(
        [pa.array(ids, pa.string()), text, pa.array([source] * n, pa.string()), url,
         pa.array(metas, pa.string())],
        schema=CORE_SCHEMA,
    )
    return out.filter(keep)


def _lenient_strings(col: pa.ChunkedArray) -> pa.Array:
    """An id or URL column as strings; bytes that are not UTF-8 are replaced (U+FFFD), not fatal."""
    col = col.combine_chunks()
    try:
        return pc.cast(col, pa.string())
    except pa.ArrowInvalid:
        return pa.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in col.to_pylist()],
                        pa.string())


def _may_hold_nul(text: pa.Array) -> bool:
    """Whether the string array's data buffer holds a 0 byte (a vectorized scan, no per-row work)."""
    data = text.buffers()[2]
    return data is not None and bool((np.frombuffer(data, dtype=np.uint8) == 0).any())


def _as_utf8(col: pa.ChunkedArray, row0: int, stats: ReadStats) -> tuple[pa.Array, set[int]]:
    """The text column as one ``string`` array, and the rows whose bytes were not UTF-8 (counted)."""
    col = col.combine_chunks()
    if pa.types.is_string(col.type):
        return col, set()
    try:
        return pc.cast(col, pa.string()), set()
    except pa.ArrowInvalid:
        values, invalid = [], set()
        for i, v in enumerate(col.to_pylist()):
            try:
                values.append(v.decode("utf-8") if isinstance(v, bytes) else v)
            except UnicodeDecodeError:
                stats.skip("invalid_utf8", row0 + i, f"row {row0 + i}")
                values.append(None)
                invalid.add(i)
        return pa.array(values, pa.string()), invalid
