"""Opening inputs: local paths and fsspec URLs as raw byte streams, plus streaming decompression.

Nothing here reads a whole file: every stream is consumed in bounded chunks, so a 20 GB input costs
a constant amount of memory.
"""

from __future__ import annotations

import io
import zlib
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

    Multi-member gzip and multi-frame zstd are read through. Truncated or corrupt compressed data
    raises (``EOFError`` / ``OSError``) only *after* every byte decoded before the damage has been
    delivered, so a reader keeps all complete records that precede it.
    """
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw, 1 << 16)
    kind = sniff_compression(buffered.peek(4)[:4])
    if kind is None:
        return buffered
    return io.BufferedReader(_Decoder(buffered, kind), 1 << 16)


class _Decoder(io.RawIOBase):
    """A raw stream of the decompressed bytes of a gzip or zstd stream (see :func:`decompressed`)."""

    def __init__(self, inner: IO[bytes], kind: str, chunk: int = 1 << 16) -> None:
        self._inner, self._kind, self._chunk = inner, kind, chunk
        self._d = self._new()
        self._out, self._pos = b"", 0  # decoded bytes not yet handed out start at _pos
        self._error: Exception | None = None
        self._done = False

    def _new(self):
        if self._kind == "gzip":
            return zlib.decompressobj(wbits=31)
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while self._pos >= len(self._out) and not self._done:
            self._fill()
        left = len(self._out) - self._pos
        if left <= 0:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            return 0
        n = min(len(buf), left)
        buf[:n] = memoryview(self._out)[self._pos:self._pos + n]
        self._pos += n
        return n

    def _fill(self) -> None:
        try:
            data = self._inner.read(self._chunk)
            if not data:
                if not self._d.eof:
                    self._error = EOFError(f"{self._kind} stream ended before its end-of-stream marker")
                self._done = True
                return
            self._out, self._pos = self._decompress(data), 0
        except Exception as exc:  # zlib.error, zstandard.ZstdError: damaged data
            self._error = exc if isinstance(exc, OSError) else OSError(f"{self._kind} data error: {exc}")
            self._done = True

    def _feed(self, data: bytes) -> bytes:
        out = self._d.decompress(data)
        # a finished member/frame followed by more bytes: start the next one
        while self._d.eof and (rest := self._d.unused_data):
            self._d = self._new()
            out += self._d.decompress(rest)
        return out

    def _decompress(self, data: bytes) -> bytes:
        snapshot = self._d.copy() if self._kind == "gzip" else None
        try:
            return self._feed(data)
        except zlib.error:
            if snapshot is None:
                raise
            # Damaged deflate data: replay this chunk in small steps from the saved state so that
            # the bytes before the damage still come out, then report the error.
            self._d = snapshot
            self._out, self._pos = self._salvage(data, 256), 0
            raise OSError("gzip data error: invalid deflate data") from None

    def _salvage(self, data: bytes, step: int) -> bytes:
        """Decompress ``data`` in ``step``-byte pieces up to the first damaged one, then byte by byte
        through that piece: everything decodable before the damage."""
        out = b""
        for i in range(0, len(data), step):
            snapshot = self._d.copy()
            try:
                out += self._feed(data[i:i + step])
            except zlib.error:
                if step == 1:
                    return out
                self._d = snapshot
                return out + self._salvage(data[i:i + step], 1)
        return out


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
