"""``curator verify OUT``: check a finished output against its manifest.

Checks, each reported as a problem when it fails:

- every file the manifest lists exists, with the listed byte size, row count (Parquet metadata) and
  sha256 (the bytes are read in full; ``quick=True`` skips the hash);
- no document id appears twice among the kept subsets (``data``/``train``/``eval``), no id and no
  ``dup_cluster`` (a near-duplicate cluster) is in both ``train`` and ``eval``;
- the counts add up: the stages' funnel is a chain (each stage's documents in = the previous one's
  documents out, the first one's = the documents read), every stage's documents in = out + dropped
  - added (only ``mix`` adds), the last stage's out = kept = the rows of the kept files, and
  kept + rejected = read + added; with every rejected document written (``rejected_sample`` 1), the
  rejected files hold exactly the rejected count.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow.parquet as pq

from curator.storage import Storage, sha256_of
from curator.writers.output import is_manifest

KEPT = ("data", "train", "eval")


def verify_output(out: str, *, quick: bool = False) -> dict[str, Any]:
    storage = Storage(out)
    problems: list[str] = []
    manifest = storage.read_json("manifest.json")
    if not is_manifest(manifest):
        return {"ok": False, "output": storage.url, "problems": [f"{storage.url} has no curator manifest.json "
                                                                   "(not a finished run)"]}
    files = manifest["files"]
    paths = Counter(f["path"] for f in files)
    problems += [f"{p} is listed {n} times" for p, n in paths.items() if n > 1]
    rows_by_subset: Counter = Counter()
    for f in files:
        problems += _check_file(storage, f, quick)
        rows_by_subset[f["subset"]] += int(f["rows"])
    problems += _check_ids(storage, files)
    problems += _check_counts(manifest, rows_by_subset)
    return {"ok": not problems, "output": storage.url, "files": len(files), "sha256_checked": not quick,
            "rows": dict(rows_by_subset), "problems": problems}


def _check_file(storage: Storage, f: dict[str, Any], quick: bool) -> list[str]:
    rel = f["path"]
    if not storage.exists(rel):
        return [f"{rel}: listed in the manifest but missing"]
    out = []
    size = storage.size(rel)
    if size != f["bytes"]:
        out.append(f"{rel}: {size} bytes, the manifest says {f['bytes']}")
    if not quick and sha256_of(storage, rel) != f["sha256"]:
        out.append(f"{rel}: sha256 differs from the manifest's")
    try:
        with storage.open_read(rel) as fh:
            rows = pq.ParquetFile(fh).metadata.num_rows
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a finding
        return out + [f"{rel}: not a readable Parquet file ({type(exc).__name__}: {exc})"]
    if rows != f["rows"]:
        out.append(f"{rel}: {rows} rows, the manifest says {f['rows']}")
    return out


def _column(storage: Storage, rel: str, name: str) -> list[Any]:
    """A column of a shard ([] when it has none or cannot be read: ``_check_file`` reports that)."""
    try:
        with storage.open_read(rel) as fh:
            pf = pq.ParquetFile(fh)
            if name not in pf.schema_arrow.names:
                return []
            return pf.read(columns=[name]).column(name).to_pylist()
    except Exception:  # noqa: BLE001
        return []


def _check_ids(storage: Storage, files: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    seen: dict[str, str] = {}
    clusters: dict[str, set[str]] = {}
    repeated = 0
    for f in files:
        if f["subset"] not in KEPT or not storage.exists(f["path"]):
            continue
        for doc_id in _column(storage, f["path"], "id"):
            if doc_id in seen:
                repeated += 1
            seen[doc_id] = f["subset"]
        for c in _column(storage, f["path"], "dup_cluster"):
            if c is not None:
                clusters.setdefault(c, set()).add(f["subset"])
    if repeated:
        out.append(f"{repeated} document ids appear more than once in the kept subsets")
    straddle = sum(1 for subsets in clusters.values() if {"train", "eval"} <= subsets)
    if straddle:
        out.append(f"{straddle} duplicate clusters (dup_cluster) have members in both train and eval")
    return out


def _check_counts(manifest: dict[str, Any], rows: Counter) -> list[str]:
    out: list[str] = []
    counts = manifest.get("counts", {})
    stats = manifest.get("stats") or {}
    kept_rows = sum(n for s, n in rows.items() if s in KEPT)
    if counts.get("kept") != kept_rows:
        out.append(f"counts.kept is {counts.get('kept')}, the kept files hold {kept_rows} rows")
    stages = stats.get("stages", [])
    read = stats.get("inputs", {}).get("records")
    if read is None:
        return out + ["the manifest has no run statistics to check the counts against"]
    if read != counts.get("input_docs"):
        out.append(f"counts.input_docs is {counts.get('input_docs')}, the readers produced {read}")
    live, added = read, 0
    for st in stages:
        dropped = sum(st["drops"].values())
        gain = st["docs_out"] + dropped - st["docs_in"]
        if st["docs_in"] != live:
            out.append(f"stage {st['name']} (stages[{st['index']}]) took {st['docs_in']} documents, the stage "
                       f"before it passed on {live}")
        if gain < 0:
            out.append(f"stage {st['name']} (stages[{st['index']}]) lost {-gain} documents without a reason")
        added += max(gain, 0)
        live = st["docs_out"]
    if live != kept_rows:
        out.append(f"the last stage passed on {live} documents, the kept files hold {kept_rows}")
    rejected = counts.get("rejected", 0)
    if kept_rows + rejected != read + added:
        out.append(f"kept {kept_rows} + rejected {rejected} != read {read} + added {added}")
    spec_out = manifest.get("spec", {}).get("output", {})
    if spec_out.get("rejected", True) and spec_out.get("rejected_sample", 1.0) >= 1.0 \
            and rows.get("rejected", 0) != rejected:
        out.append(f"rejected/ holds {rows.get('rejected', 0)} rows, {rejected} documents were rejected")
    return out
