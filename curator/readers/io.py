"""Opening inputs: local paths and fsspec URLs as raw byte streams, plus streaming decompression.

Nothing here reads a whole file: every stream is consumed in bounded chunks, so a 20 GB input costs
a constant amount of memory.
"""

from __future__ import annotations

import gzip
import io
from typing import IO

import fsspec

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def open_raw(path: str) -> IO[bytes]:
    """Open ``path`` (local path or any fsspec URL) as a binary stream, without decompressing."""
    return fsspec.open(path, "rb", compression=None).open()


def file_size(path: str) -> int | None:
    """Size in bytes of the stored (compressed) file, or None when the filesystem cannot tell."""
    try:
        fs, p = fsspec.core.url_to_fs(path)
        return int(fs.size(p))
    except (OSError, ValueError, TypeError):
        return None


def sniff_compression(head: bytes) -> str | None:
    """'gzip', 'zstd' or None from the first bytes of a stream (magic numbers, not the file name)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def decompressed(raw: IO[bytes]) -> IO[bytes]:
    """Wrap ``raw`` in a streaming decompressor chosen by its magic bytes (gzip, zstd or none).

    Truncated or corrupt compressed data surfaces as an exception from ``read`` (EOFError, OSError
    or zstandard.ZstdError) at the point where it is met; everything before it is delivered.
    """
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw, 1 << 16)
    kind = sniff_compression(buffered.peek(4)[:4])
    if kind == "gzip":
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), 1 << 16)
    if kind == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        return io.BufferedReader(reader, 1 << 16)
    return buffered


def find_marker(raw: IO[bytes], start: int, marker: bytes, chunk: int = 1 << 20) -> int | None:
    """Offset of the first ``marker`` at or after ``start`` in a seekable raw stream, else None."""
    raw.seek(start)
    pos, tail = start, b""
    while True:
        data = raw.read(chunk)
        if not data:
            return None
        buf = tail + data
        i = buf.find(marker)
        if i >= 0:
            return pos - len(tail) + i
        keep = len(marker) - 1
        tail = buf[-keep:] if keep else b""
        pos += len(data)
