"""Dataset summary and card: counts equal the Parquet files' actual rows; the card's metadata loads."""

from __future__ import annotations

import glob
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from curator.card import dataset_summary, size_category, write_card


def _actual(out, manifest, subset):
    tables = [pq.read_table(out / f["path"]) for f in manifest["files"] if f["subset"] == subset]
    return pa.concat_tables(tables, promote_options="permissive")


def test_summary_counts_equal_the_parquet_rows(crafted_output):
    out, manifest = crafted_output
    summary = dataset_summary(out, manifest["files"])
    assert set(summary["splits"]) == {"train", "eval"}
    total_docs = total_chars = 0
    for subset in ("train", "eval"):
        t = _actual(out, manifest, subset)
        chars = int(pc.sum(pc.utf8_length(t.column("text"))).as_py())
        got = summary["splits"][subset]
        assert (got["docs"], got["chars"], got["estimated_tokens"]) == (t.num_rows, chars, chars // 4)
        assert got["files"] == sum(f["subset"] == subset for f in manifest["files"])
        total_docs += t.num_rows
        total_chars += chars
        for src in ("web", "books"):
            assert summary["sources"][src]["splits"][subset] == sum(s == src for s in t.column("source").to_pylist())
    assert summary["total"]["docs"] == total_docs == manifest["counts"]["kept"] == 30
    assert summary["total"]["chars"] == total_chars
    assert sum(v["docs"] for v in summary["sources"].values()) == total_docs
    assert summary["languages"] == {"en": 22, "de": 8}  # rejected rows are not counted


def test_card_front_matter_names_the_splits_and_their_files(crafted_output):
    out, manifest = crafted_output
    path = Path(write_card(out, manifest))
    text = path.read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    files = meta["configs"][0]["data_files"]
    assert [f["split"] for f in files] == ["train", "eval"]
    for f in files:
        matched = sorted(glob.glob(str(out / f["path"])))
        expected = sorted(str(out / m["path"]) for m in manifest["files"] if m["subset"] == f["split"])
        assert matched == expected and matched
    assert meta["language"] == ["en", "de"]
    assert meta["license"] == "other"
    assert meta["task_categories"] == ["text-generation"]
    assert meta["size_categories"] == ["n<1K"]
    row = next(line for line in text.splitlines() if line.startswith("| train |"))
    files = [m for m in manifest["files"] if m["subset"] == "train"]
    docs = sum(m["rows"] for m in files)
    assert row.startswith(f"| train | {len(files)} | {docs:,} |"), row
    assert "`langid`: `{\"threshold\": 0.5}`" in text
    assert "| exact_dedup | 35 | 30 |" in text  # the funnel row from stats.json


def test_size_categories():
    assert [size_category(n) for n in (0, 999, 1000, 123_456, 10**12, 10**13)] == \
        ["n<1K", "n<1K", "1K<n<10K", "100K<n<1M", "n>1T", "n>1T"]


def test_datasets_loads_the_output(crafted_output, monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    out, manifest = crafted_output
    write_card(out, manifest)
    cache = str(tmp_path / "cache")
    by_card = datasets.load_dataset(str(out), cache_dir=cache)
    assert {k: v.num_rows for k, v in by_card.items()} == {"train": 22, "eval": 8}
    by_folder = datasets.load_dataset("parquet", data_dir=str(out), cache_dir=cache)
    assert {k: v.num_rows for k, v in by_folder.items()} == {"train": 22, "test": 8}  # eval/ read as "test"
    assert sorted(by_card["eval"]["id"]) == sorted(_actual(out, manifest, "eval").column("id").to_pylist())
