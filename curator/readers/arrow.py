"""Arrow reader: Arrow IPC files, as Hugging Face ``datasets`` writes them, -> documents.

A folder written by ``Dataset.save_to_disk`` (``data-00000-of-00003.arrow`` beside ``state.json``) or a
``DatasetDict`` (one such folder per split) is an input like any other: the path expands to its
``.arrow`` files (give ``folder/train`` for one split). The IPC stream format (what ``datasets`` writes)
and the IPC file format are both read, batch by batch, with the Parquet reader's options and skips
(``text_column``, ``id_column``, ``url_column``, ``meta_columns``; ``corrupt_file``, ``missing_column``,
``bad_text_column``, ...). Datasets on the Hub are Parquet: ``hf://datasets/ORG/NAME/...`` URLs go through
fsspec (``huggingface_hub``'s filesystem) to the Parquet reader when the Hub is reachable.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.ipc as ipc

from curator.readers.base import DEFAULT_MAX_DOC_BYTES, ReadStats
from curator.readers.io import open_raw
from curator.readers.parquet import read_batches

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


def _open_ipc(raw) -> tuple[pa.Schema, int | None, Iterator[pa.RecordBatch]]:
    """(schema, rows if known, batches) of an IPC stream or, failing that, an IPC file."""
    head = raw.read(6)
    raw.seek(0)
    if head == b"ARROW1":
        reader = ipc.open_file(raw)
        batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        return reader.schema, sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches)), batches
    stream = ipc.open_stream(raw)
    return stream.schema, None, iter(stream)


def read_arrow(
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
    """Stream one Arrow IPC file as core tables (ids and ``meta`` as the Parquet reader makes them)."""
    stats = stats if stats is not None else ReadStats(path=path)
    stats.path = stats.path or path
    key, source = file_key or path, source or "hf"
    raw = open_raw(path)
    try:
        try:
            schema, rows, batches = _open_ipc(raw)
        except (pa.ArrowException, OSError) as exc:
            stats.skip("corrupt_file", 0, f"{type(exc).__name__}: {exc}")
            return

        def rebatched(columns: list[str]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                batch = batch.select(columns)
                for start in range(0, batch.num_rows, batch_size):
                    yield batch.slice(start, batch_size)

        yield from read_batches(schema, rows, rebatched, path=path, key=key, source=source, stats=stats,
                                text_column=text_column, id_column=id_column, url_column=url_column,
                                meta_columns=meta_columns, max_doc_bytes=max_doc_bytes)
    finally:
        raw.close()
