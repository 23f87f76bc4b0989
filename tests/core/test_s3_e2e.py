"""The pipeline on a real S3 API (moto server): inputs read from s3://, the output written and committed
there (no renames), read back with pyarrow and datasets, equal to the local-disk run."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curator.pipeline import run_pipeline
from curator.spec import validate_spec
from curator.storage import Storage
from curator.verify import verify_output

pytestmark = pytest.mark.ray
DATA = Path(__file__).resolve().parents[2] / "examples" / "data"


def _spec(warc: str, jsonl: str, out: str) -> dict:
    return {"name": "s3", "inputs": [{"path": warc, "source": "commoncrawl"},
                                     {"path": jsonl, "options": {"file_key": "sample"}}],
            "stages": [{"stage": "html_to_text", "sources": ["commoncrawl"], "extractor": "resiliparse"},
                       {"stage": "min_length", "min_chars": 200}, {"stage": "exact_dedup"},
                       {"stage": "split", "eval_fraction": 0.1}],
            "output": {"path": out, "shard_size_mb": 1}, "limit": 150}


def _texts(storage: Storage, manifest: dict, subset: str) -> list[str]:
    out = []
    for f in manifest["files"]:
        if f["subset"] == subset:
            with storage.open_read(f["path"]) as fh:
                out += pq.read_table(fh).column("text").to_pylist()
    return sorted(out)


def test_s3_inputs_and_output_match_the_local_run(ray_cluster, s3_bucket, tmp_path):
    s3 = Storage(s3_bucket)
    for name in ("sample.warc.gz", "sample.jsonl.zst"):
        s3.write_bytes(f"in/{name}", (DATA / name).read_bytes())
    remote = run_pipeline(validate_spec(_spec(f"{s3_bucket}/in/*.warc.gz", f"{s3_bucket}/in/sample.jsonl.zst",
                                              f"{s3_bucket}/out")))
    local = run_pipeline(validate_spec(_spec(str(DATA / "sample.warc.gz"), str(DATA / "sample.jsonl.zst"),
                                             str(tmp_path / "out"))))
    out = Storage(f"{s3_bucket}/out")
    manifest = out.read_json("manifest.json")
    assert manifest["run_id"] == remote.manifest["run_id"]
    assert sorted(out.walk_files("")) == sorted({f["path"] for f in manifest["files"]} |
                                                {"manifest.json", "stats.json", "README.md", "report.html"})
    assert verify_output(f"{s3_bucket}/out")["ok"]
    assert manifest["counts"] == local.manifest["counts"]
    for subset in ("train", "eval", "rejected"):
        assert _texts(out, manifest, subset) == _texts(Storage(str(tmp_path / "out")), local.manifest, subset)

    import datasets

    train = [f"{s3_bucket}/out/{f['path']}" for f in manifest["files"] if f["subset"] == "train"]
    ds = datasets.load_dataset("parquet", data_files={"train": train}, split="train")
    assert sorted(ds["text"]) == _texts(out, manifest, "train")
    stats = json.loads(out.read_bytes("stats.json"))
    assert stats["status"] == "succeeded"
