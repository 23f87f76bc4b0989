"""Readers: each turns one input file into a stream of Arrow tables in the core schema.

A small format registry sits on top:

- :func:`detect_format` names the reader for a path by its extension;
- :func:`expand_inputs` turns globs / fsspec URLs into a sorted, de-duplicated file list;
- :func:`read_file` opens any supported file and yields ``pa.Table`` batches.

Readers are plain generators and import no Ray: the executor decides how files are spread over
tasks. Every reader streams (a 20 GB file costs constant memory) and turns bad input into counted,
logged skips in the ``ReadStats`` it is given.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable, Iterator

import fsspec
import pyarrow as pa

from curator.readers.base import DEFAULT_MAX_DOC_BYTES, BatchBuilder, ReadStats
from curator.readers.io import file_size

__all__ = [
    "FORMATS", "BatchBuilder", "ReadStats", "detect_format", "expand_inputs", "id_key", "read_file", "reader_for",
    "reader_options", "suffixes",
]


# (suffix, format), longest suffixes first so ".warc.wet.gz" wins over ".warc.gz" / ".gz"
_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".warc.wet.gz", "wet"), (".warc.wet.zst", "wet"), (".warc.wet", "wet"),
    (".wet.gz", "wet"), (".wet.zst", "wet"), (".wet", "wet"),
    (".warc.gz", "warc"), (".warc.zst", "warc"), (".warc", "warc"),
    (".jsonl.zst", "jsonl"), (".jsonl.zstd", "jsonl"), (".jsonl.gz", "jsonl"), (".jsonl", "jsonl"),
    (".json.zst", "jsonl"), (".json.gz", "jsonl"), (".ndjson", "jsonl"),
    (".parquet", "parquet"), (".pq", "parquet"), (".arrow", "arrow"),
)
FORMATS = ("warc", "wet", "jsonl", "parquet", "arrow")
_GLOB_CHARS = set("*?[")


def detect_format(path: str) -> str | None:
    """'warc', 'wet', 'jsonl', 'parquet' or 'arrow' from the file name (query strings ignored), else None."""
    name = path.split("?", 1)[0].lower()
    for suffix, fmt in _SUFFIXES:
        if name.endswith(suffix):
            return fmt
    return None


def suffixes(fmt: str | None = None) -> tuple[str, ...]:
    """The file-name endings :func:`detect_format` recognizes (those of ``fmt`` only, when given), longest
    first within a format."""
    return tuple(s for s, f in _SUFFIXES if fmt is None or f == fmt)


def reader_for(fmt: str) -> Callable[..., Iterator[pa.Table]]:
    """The reader function of ``fmt`` (its keyword options beyond the common ones are
    :func:`reader_options`); a ValueError naming the formats for an unknown one."""
    if fmt == "warc":
        from curator.readers.warc import read_warc

        return read_warc
    if fmt == "wet":
        from curator.readers.wet import read_wet

        return read_wet
    if fmt == "jsonl":
        from curator.readers.jsonl import read_jsonl

        return read_jsonl
    if fmt == "parquet":
        from curator.readers.parquet import read_parquet

        return read_parquet
    if fmt == "arrow":
        from curator.readers.arrow import read_arrow

        return read_arrow
    raise ValueError(f"unknown input format {fmt!r}: choose one of {', '.join(FORMATS)}")


COMMON_PARAMS = ("path", "source", "batch_size", "max_doc_bytes", "stats")


def reader_options(fmt: str) -> dict[str, object]:
    """The options (``inputs[].options``) the reader of ``fmt`` takes, with their defaults."""
    import inspect

    params = inspect.signature(reader_for(fmt)).parameters
    return {name: p.default for name, p in params.items() if name not in COMMON_PARAMS}


def id_key(path: str) -> str:
    """The name of an input file in its documents' ids: a local file under the working directory by its
    relative path (so a checkout, or the copy ``ray job submit --working-dir`` makes, gives the same ids
    wherever it lies), any other file by its absolute path or URL."""
    if "://" in path:
        return path
    cwd, full = os.getcwd(), os.path.abspath(path)
    return os.path.relpath(full, cwd) if full.startswith(cwd.rstrip(os.sep) + os.sep) else full


def expand_inputs(patterns: str | Iterable[str]) -> list[str]:
    """Expand local globs, directories and fsspec URLs (``s3://bucket/cc/*.warc.gz``) into files.

    The result is sorted and de-duplicated, so the same patterns always give the same list. Local
    paths come back absolute. A directory expands to the files below it whose format is known. A
    pattern that matches nothing raises ``FileNotFoundError`` naming the pattern.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    found: set[str] = set()
    for pattern in patterns:
        matches = _expand_one(pattern)
        if not matches:
            raise FileNotFoundError(f"input pattern {pattern!r} matched no files")
        found.update(matches)
    return sorted(found)


def _expand_one(pattern: str) -> list[str]:
    if "://" not in pattern:
        local = os.path.abspath(os.path.expanduser(pattern))
        if os.path.isdir(local):
            return [p for p in glob.glob(os.path.join(local, "**", "*"), recursive=True)
                    if os.path.isfile(p) and detect_format(p)]
        if _GLOB_CHARS & set(pattern):
            return [p for p in glob.glob(local, recursive=True) if os.path.isfile(p)]
        return [local] if os.path.isfile(local) else []
    fs, path = fsspec.core.url_to_fs(pattern)
    protocol = pattern.split("://", 1)[0]
    if _GLOB_CHARS & set(path):
        paths = [p for p in fs.glob(path) if fs.isfile(p)]
    elif fs.isdir(path):
        paths = [p for p in fs.find(path) if detect_format(p)]
    else:
        paths = [path] if fs.exists(path) else []
    return [p if "://" in p else f"{protocol}://{p}" for p in paths]


def read_file(
    path: str,
    *,
    format: str | None = None,
    source: str | None = None,
    batch_size: int = 1000,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
    stats: ReadStats | None = None,
    key: str | None = None,
    **options,
) -> Iterator[pa.Table]:
    """Stream one input file as core-schema tables of at most ``batch_size`` rows.

    ``format`` defaults to :func:`detect_format`; ``options`` go to the format's reader
    (jsonl: text_field, id_field, url_field, file_key; parquet: text_column, id_column,
    url_column, file_key; warc: backend). ``key`` names the file in the ids of the readers that
    hash a file name (:func:`id_key`), unless the options give ``file_key``. An empty file is a
    counted ``empty_file`` skip.
    """
    fmt = format or detect_format(path)
    if fmt is None:
        known = ", ".join(s for s, _ in _SUFFIXES)
        raise ValueError(f"cannot tell the format of {path!r} from its name (known: {known}); "
                         "pass format=")
    reader = reader_for(fmt)
    if key is not None and "file_key" in reader_options(fmt):
        options.setdefault("file_key", key)
    stats = stats if stats is not None else ReadStats(path=path)
    stats.path = stats.path or path
    size = file_size(path)
    if size == 0:
        stats.skip("empty_file", 0)
        return
    yield from reader(path, source=source, batch_size=batch_size, max_doc_bytes=max_doc_bytes,
                      stats=stats, **options)
    if size is not None:
        stats.bytes += size
