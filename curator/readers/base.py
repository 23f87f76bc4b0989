"""Shared reader plumbing: per-file skip counters and the batch builder."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from curator.schema import core_table

log = logging.getLogger("curator.readers")

# Documents above this size are skipped and counted (``too_large``-style reasons) by every reader.
DEFAULT_MAX_DOC_BYTES = 10 << 20


@dataclass
class ReadStats:
    """What a reader saw in one file: records read and skips by reason (counted and logged)."""

    path: str = ""
    records: int = 0
    bytes: int = 0
    skipped: Counter = field(default_factory=Counter)

    def skip(self, reason: str, offset: int | None = None, detail: str = "",
             level: int = logging.WARNING, count: int = 1) -> None:
        """Count ``count`` skipped records and log where they were (``level=logging.DEBUG`` for routine
        filtering such as a WARC's images, so that real data problems stand out as warnings)."""
        self.skipped[reason] += count
        where = f"{self.path}@{offset}" if offset is not None else self.path
        log.log(level, "skip %s: %s %s", where, reason, detail)

    def merge(self, other: ReadStats) -> None:
        self.records += other.records
        self.bytes += other.bytes
        self.skipped.update(other.skipped)


class BatchBuilder:
    """Accumulate core-schema rows and emit a table every ``batch_size`` rows."""

    def __init__(self, batch_size: int = 1000) -> None:
        self.batch_size = batch_size
        self._rows: dict[str, list] = {k: [] for k in ("id", "text", "source", "url", "meta")}

    def add(self, id: str, text: str, source: str, url: str | None, meta: str) -> pa.Table | None:
        r = self._rows
        r["id"].append(id)
        r["text"].append(text)
        r["source"].append(source)
        r["url"].append(url)
        r["meta"].append(meta)
        if len(r["id"]) >= self.batch_size:
            return self.flush()
        return None

    def flush(self) -> pa.Table | None:
        if not self._rows["id"]:
            return None
        r = self._rows
        # text and meta go in as UTF-8 bytes: pyarrow takes bytes about ten times faster than it
        # converts non-ASCII str objects, and these two columns hold nearly all the bytes.
        columns = {"id": r["id"], "text": _utf8(r["text"]), "source": r["source"], "url": r["url"],
                   "meta": _utf8(r["meta"])}
        table = core_table(columns)
        self._rows = {k: [] for k in self._rows}
        return table


def _utf8(values: list[str | None]) -> pa.Array:
    # str.encode("utf-8") (strict) only ever yields valid UTF-8, so the bytes can be viewed as
    # strings without pyarrow validating them a second time.
    return pa.array([v.encode("utf-8") if v is not None else None for v in values], pa.binary()).view(pa.string())
