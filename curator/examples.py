"""Examples of what a rule removed: rejected documents of a finished output, by stage and reason.

Reads only the ``rejected/`` files the manifest lists, column-pruned and batch by batch, and stops as soon
as enough examples are found, so looking at a few examples of a 100 GB output costs a few batches.
Each example carries the text *around the reason* where the reason points at a place in the text (a
``lorem ipsum`` line, a curly bracket): ``excerpt`` is a window around
the first such place, else the start of the text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import regex

from curator.schema import DROP_REASON, DROP_STAGE
from curator.storage import Storage

# reasons whose cause is a place in the text: where to centre the excerpt
_LOCATORS = {
    "c4_lorem_ipsum": regex.compile(r"(?i)lorem ipsum"),
    "c4_curly_bracket": regex.compile(r"\{"),
}
_COLUMNS = ("id", "source", "url", "text", DROP_REASON, DROP_STAGE)


def excerpt(text: str, reason: str | None, width: int) -> str:
    """``width`` characters of ``text`` around the place ``reason`` points at (else its start), one line."""
    text = text or ""
    start = 0
    locator = _LOCATORS.get(reason or "")
    if locator is not None and (m := locator.search(text)):
        start = max(0, m.start() - width // 3)
    piece = text[start:start + width].replace("\n", " ⏎ ")
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


def rejected_examples(out: str | Storage, *, reason: str | None = None, stage: str | None = None,
                      n: int = 5, width: int = 300) -> Iterator[dict[str, Any]]:
    """Up to ``n`` rejected documents of a finished output (optionally of one ``reason``/``stage``), each
    ``{id, source, url, reason, stage, chars, excerpt}``, in manifest file order."""
    storage = out if isinstance(out, Storage) else Storage(out)
    manifest = storage.read_json("manifest.json") or {}
    found = 0
    for entry in manifest.get("files", []):
        if entry.get("subset") != "rejected" or found >= n:
            continue
        with storage.open_read(entry["path"]) as f:
            pf = pq.ParquetFile(f)
            cols = [c for c in _COLUMNS if c in pf.schema_arrow.names]
            for batch in pf.iter_batches(columns=cols, batch_size=4096):
                mask = None
                for col, want in ((DROP_REASON, reason), (DROP_STAGE, stage)):
                    if want is not None and col in batch.schema.names:
                        m = pc.equal(batch.column(col), want)
                        mask = m if mask is None else pc.and_(mask, m)
                if mask is not None:
                    batch = batch.filter(pc.fill_null(mask, False))
                for row in batch.to_pylist():
                    text = row.get("text") or ""
                    yield {"id": row["id"], "source": row.get("source"), "url": row.get("url"),
                           "reason": row.get(DROP_REASON), "stage": row.get(DROP_STAGE), "chars": len(text),
                           "excerpt": excerpt(text, row.get(DROP_REASON), width)}
                    found += 1
                    if found >= n:
                        return


def reasons_of(manifest: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(stage, reason, count) of every drop the manifest's counts record, largest first."""
    drops = manifest.get("counts", {}).get("drops_by_stage", {})
    rows = [(stage, reason, n) for stage, reasons in drops.items() for reason, n in reasons.items()]
    return sorted(rows, key=lambda r: (-r[2], r[0], r[1]))
