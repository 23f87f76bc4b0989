"""A finished run's output folder, written by the real shard writer (no Ray): train/, eval/, rejected/,
manifest.json and stats.json, for the card and report tests."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curator.card import dataset_summary
from curator.stats import RunStats, write_json_atomic
from curator.storage import Storage
from curator.writers.output import shard_name
from curator.writers.shards import ShardWriter

SPEC_STAGES = [
    {"stage": "langid", "threshold": 0.5},
    {"stage": "gopher_quality"},
    {"stage": "exact_dedup"},
    {"stage": "split", "eval_fraction": 0.25},
]


def crafted_rows() -> pa.Table:
    """40 documents: 30 kept (split 3:1 train/eval, two sources, en/de), 10 rejected (low lang score or
    exact duplicates of a kept one)."""
    rows = []
    for i in range(40):
        kept = i < 30
        dup = i >= 35
        rows.append({
            "id": f"doc{i:02d}",
            "text": ("word " * (60 + i)).strip(),
            "source": "web" if i % 3 else "books",
            "url": None,
            "meta": "{}",
            "lang": "en" if i % 4 else "de",
            "lang_score": 0.9 if kept or dup else 0.3,
            "quality_gopher_word_count": 60 + i,
            "dup_cluster": "doc00" if (dup or i == 0) else None,
            "split": ("eval" if i % 4 == 0 else "train") if kept else None,
            "drop_reason": None if kept else ("exact_duplicate" if dup else "lang_low_score"),
            "drop_stage": None if kept else ("exact_dedup" if dup else "langid"),
        })
    return pa.Table.from_pylist(rows)


def write_output(out: Path, table: pa.Table, stages: list[dict], name: str = "crafted") -> dict:
    """Write ``table`` (rows with drop_reason set go to rejected/) as a run's output; return the manifest."""
    storage = Storage(str(out))
    dropped = pc.is_valid(table.column("drop_reason")) if "drop_reason" in table.column_names else None
    parts = {"rejected": table.filter(dropped), "live": table.filter(pc.invert(dropped))} if dropped is not None \
        else {"live": table}
    files = []
    for part, rows in parts.items():
        if part == "live":
            rows = rows.drop_columns([c for c in ("drop_reason", "drop_stage") if c in rows.column_names])
            subsets = {str(v) for v in rows.column("split").to_pylist()} if "split" in rows.column_names else {"data"}
            groups = {s: rows.filter(pc.equal(rows.column("split"), s)) if s != "data" else rows for s in subsets}
        else:
            groups = {"rejected": rows}
        for subset, t in sorted(groups.items()):
            writer = ShardWriter(storage, subset, lambda k, s=subset: shard_name(s, "00000", k, "0" * 12), 4_000)
            for start in range(0, t.num_rows, 9):
                writer.write(t.slice(start, 9))
            files.extend(writer.close())
    kept = sum(f["rows"] for f in files if f["subset"] != "rejected")
    rejected = table.num_rows - kept
    stats = RunStats.empty(name, [(s["stage"], False) for s in stages], 1)
    stats.add_record({"read": {"records": table.num_rows, "bytes": 1000, "skipped": {"non_html": 2}}, "stages": {}})
    reasons = table.column("drop_reason").to_pylist() if "drop_reason" in table.column_names else []
    by_stage = table.column("drop_stage").to_pylist() if "drop_stage" in table.column_names else []
    live = table.num_rows
    for i, st in enumerate(stages):
        drops: dict[str, int] = {}
        for r, s in zip(reasons, by_stage):
            if s == st["stage"]:
                drops[r] = drops.get(r, 0) + 1
        n = sum(drops.values())
        stats.add_stages({str(i): {"docs_in": live, "docs_out": live - n, "chars_in": 100 * live,
                                   "chars_out": 100 * (live - n), "drops": drops, "seconds": 0.5}})
        live -= n
    stats.status = "succeeded"
    write_json_atomic(out / "stats.json", stats.dump())
    manifest = {
        "name": name, "created_at": "2026-11-25T00:00:00Z", "seed": 0, "spec_sha256": "0" * 64,
        "spec": {"name": name, "stages": stages, "output": {"path": str(out)}},
        "versions": {"curator": "0.1.0", "python": "3.11"},
        "inputs": [{"path": "in.jsonl", "input": 0, "bytes": 1000}],
        "counts": {"input_docs": table.num_rows, "kept": kept, "rejected": rejected, "input_skipped": {}},
        "files": files,
    }
    manifest["dataset"] = dataset_summary(storage, files)
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


@pytest.fixture
def crafted_output(tmp_path) -> tuple[Path, dict]:
    out = tmp_path / "out"
    out.mkdir()
    return out, write_output(out, crafted_rows(), SPEC_STAGES)


@pytest.fixture
def output_writer():
    """``write_output`` itself, for tests that craft their own rows."""
    return write_output
