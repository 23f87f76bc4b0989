"""An output location on any fsspec filesystem: a local folder, a shared mount, ``s3://bucket/prefix``.

Every file the pipeline writes goes through :class:`Storage`, whose writes are whole-or-nothing on
every backend: on a local disk a file is written under a temporary name and renamed; on an object store
an object appears only when its upload completes (a failed write aborts the upload). Nothing is ever
renamed on an object store: the manifest, written last, is what commits a run (``curator.output``).

``create_exclusive`` is the lock primitive: ``O_CREAT | O_EXCL`` on a local disk, a conditional PUT
(``If-None-Match: *``) on S3.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

TMP_MARK = ".tmp-"


class Storage:
    """Paths relative to one root folder (or prefix) on one filesystem."""

    def __init__(self, url: str) -> None:
        self.fs, root = fsspec.core.url_to_fs(url)
        self.local = isinstance(self.fs, LocalFileSystem)
        self.root = os.path.abspath(root) if self.local else root.rstrip("/")
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.url = self.root if self.local else f"{protocol}://{self.root}"

    def __repr__(self) -> str:
        return f"Storage({self.url!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Storage, (self.url,))

    def path(self, rel: str) -> str:
        """The filesystem path of ``rel`` (what ``self.fs`` takes)."""
        return posixpath.join(self.root, rel) if rel else self.root

    def url_of(self, rel: str) -> str:
        """A full path or URL of ``rel`` that readers (pyarrow, fsspec, datasets) open directly."""
        return posixpath.join(self.url, rel) if rel else self.url

    # reading
    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat_file(self.path(rel))

    def read_json(self, rel: str) -> Any | None:
        """The parsed JSON file, or None when it is missing or not valid JSON."""
        try:
            return json.loads(self.read_bytes(rel))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None

    def open_read(self, rel: str) -> IO[bytes]:
        return self.fs.open(self.path(rel), "rb")

    def size(self, rel: str) -> int:
        return int(self.fs.size(self.path(rel)))

    def listdir(self, rel: str = "") -> list[str]:
        """Names (not paths) of the entries directly inside ``rel``; empty when it does not exist."""
        try:
            entries = self.fs.ls(self.path(rel), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        base = self.path(rel).rstrip("/")
        return sorted(posixpath.relpath(e, base) for e in entries if e.rstrip("/") != base)

    def walk_files(self, rel: str = "") -> list[str]:
        """Every file below ``rel``, as paths relative to the root."""
        base = self.path(rel)
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        return sorted(posixpath.relpath(p, self.root) for p in found)

    # writing
    @contextmanager
    def open_write(self, rel: str) -> Iterator[HashingWriter]:
        """A binary file that appears at ``rel`` whole when the block ends, or not at all when it raises.
        The writer counts bytes and sha256 as they pass (``.nbytes``, ``.sha256``)."""
        target = self.path(rel)
        self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
        if self.local:
            tmp = f"{target}{TMP_MARK}{uuid.uuid4().hex[:8]}"
            raw = open(tmp, "wb")
            writer = HashingWriter(raw)
            try:
                yield writer
                raw.flush()
                os.fsync(raw.fileno())
                raw.close()
                os.replace(tmp, target)
            except BaseException:
                raw.close()
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                raise
            return
        raw = self.fs.open(target, "wb")
        writer = HashingWriter(raw)
        try:
            yield writer
        except BaseException:
            _discard(raw)
            raise
        raw.close()

    def write_bytes(self, rel: str, data: bytes) -> None:
        with self.open_write(rel) as f:
            f.write(data)

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_bytes(rel, json.dumps(obj, indent=2).encode("utf-8"))

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` holding ``data`` only if it does not exist yet; False when it already does."""
        target = self.path(rel)
        self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
        if self.local:
            try:
                fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            return True
        try:
            self.fs.pipe_file(target, data, mode="create")
        except FileExistsError:
            return False
        except TypeError:  # a filesystem without exclusive creation: best effort
            if self.fs.exists(target):
                return False
            self.fs.pipe_file(target, data)
        return True

    def delete(self, rel: str) -> None:
        try:
            self.fs.rm_file(self.path(rel))
        except FileNotFoundError:
            pass

    def delete_tree(self, rel: str) -> None:
        try:
            self.fs.rm(self.path(rel), recursive=True)
        except FileNotFoundError:
            pass


def _discard(raw: Any) -> None:
    """Abort an unfinished object-store upload (nothing becomes visible)."""
    discard = getattr(raw, "discard", None)
    if discard is not None:
        discard()
        raw.closed = True  # already thrown away: closing must not upload it
    else:
        raw.close()


class HashingWriter:
    """A write-only binary file wrapper that keeps the byte count and the sha256 of what was written."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.nbytes = 0
        self._sha = hashlib.sha256()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        self._sha.update(view)
        self.raw.write(view)
        self.nbytes += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.nbytes

    def flush(self) -> None:
        self.raw.flush()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:  # the owner closes the raw file
        self.closed = True

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def sha256_of(storage: Storage, rel: str) -> str:
    h = hashlib.sha256()
    with storage.open_read(rel) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
