"""End-to-end runs on the session's local Ray cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curator.pipeline import OutputExistsError, run_pipeline
from curator.schema import make_id
from curator.spec import validate_spec

pytestmark = pytest.mark.ray
REPO = Path(__file__).resolve().parents[2]


def _write_jsonl(path: Path, texts: list[str]) -> None:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))


def _corpus(tmp_path: Path) -> tuple[list[Path], int, int]:
    """Two files: 60 docs, 20 of them short (< 40 chars); returns (files, n_docs, n_short)."""
    files = []
    n_short = 0
    for f in range(2):
        texts = []
        for i in range(30):
            if i % 3 == 0:
                texts.append(f"short {f}-{i}")
                n_short += 1
            else:
                texts.append(f"document {f}-{i} " + "with enough words to pass the length filter " * 2)
        p = tmp_path / f"part{f}.jsonl"
        _write_jsonl(p, texts)
        files.append(p)
    return files, 60, n_short


def _spec(tmp_path: Path, out: str, **extra) -> dict:
    spec = {
        "name": "e2e",
        "inputs": [{"path": str(tmp_path / "part*.jsonl"), "source": "test"}],
        "stages": [{"stage": "min_length", "min_chars": 40}],
        "output": {"path": str(tmp_path / out), "shard_size_mb": 0.002},
        "ray": {"batch_size": 7},
    }
    spec.update(extra)
    return spec


def _rows(out: Path | str, subset: str) -> list[dict]:
    out = Path(out)
    manifest = json.loads((out / "manifest.json").read_text())
    rows = []
    for f in manifest["files"]:
        if f["subset"] == subset:
            t = pq.read_table(out / f["path"])
            assert t.num_rows == f["rows"]
            rows.extend(t.to_pylist())
    return rows


def test_run_counts_add_up_and_output_is_deterministic(ray_cluster, tmp_path):
    _, n_docs, n_short = _corpus(tmp_path)
    res = run_pipeline(validate_spec(_spec(tmp_path, "out1")))
    out = Path(res.out_dir)
    kept, rejected = _rows(out, "data"), _rows(out, "rejected")
    assert len(kept) == n_docs - n_short
    assert len(rejected) == n_short
    assert {r["drop_reason"] for r in rejected} == {"too_short"}
    assert {r["drop_stage"] for r in rejected} == {"min_length"}
    assert all(len(r["text"]) >= 40 for r in kept)
    assert len({r["id"] for r in kept + rejected}) == n_docs
    counts = res.manifest["counts"]
    assert counts == {"input_docs": n_docs, "kept": n_docs - n_short, "rejected": n_short,
                      "input_skipped": {}, "drops_by_stage": {"min_length": {"too_short": n_short}}}
    assert res.stats["units"] == {"total": 2, "done": 2, "resumed": 0}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["status"] == "succeeded"
    st = stats["stages"][0]
    assert (st["docs_in"], st["docs_out"], st["drops"]) == (n_docs, n_docs - n_short, {"too_short": n_short})
    assert len([f for f in res.manifest["files"] if f["subset"] == "data"]) > 1  # small shards rolled

    again = run_pipeline(validate_spec(_spec(tmp_path, "out2")))
    assert [f["sha256"] for f in again.manifest["files"]] == [f["sha256"] for f in res.manifest["files"]]


def test_the_same_spec_in_two_checkouts_gives_the_same_ids(ray_cluster, tmp_path, monkeypatch):
    """Ids name a file under the working directory by its relative path, so a second checkout (or the copy
    ray job submit makes) gives identical ids, so the same documents and the same split; a file outside it
    keeps its absolute path. (The files' bytes differ: their names carry the inputs' mtimes, and ``meta``
    their full paths.)"""
    counts, ids = [], []
    for checkout in ("a", "b"):
        root = tmp_path / checkout
        root.mkdir()
        _corpus(root)
        monkeypatch.chdir(root)
        spec = _spec(Path("."), "out")
        res = run_pipeline(validate_spec(spec))
        ids.append(sorted(r["id"] for r in _rows(root / "out", "data")))
        counts.append(res.manifest["counts"])
    assert len(ids[0]) == 40 and ids[0] == ids[1] and counts[0] == counts[1]
    assert make_id("part0.jsonl", 2) in ids[0]  # line 2 of part0.jsonl (line 1 is short)
    monkeypatch.chdir(tmp_path / "a" / "out")
    outside = run_pipeline(validate_spec(_spec(tmp_path / "a", "out2")))
    assert make_id(str(tmp_path / "a" / "part0.jsonl"), 2) in {r["id"] for r in _rows(outside.out_dir, "data")}


def test_finished_output_is_not_overwritten_by_accident(ray_cluster, tmp_path):
    _corpus(tmp_path)
    run_pipeline(validate_spec(_spec(tmp_path, "out")))
    with pytest.raises(OutputExistsError):
        run_pipeline(validate_spec(_spec(tmp_path, "out")))
    spec = _spec(tmp_path, "out")
    spec["output"]["overwrite"] = True
    spec["stages"] = []
    res = run_pipeline(validate_spec(spec))
    assert res.manifest["counts"]["kept"] == 60
    assert not list((tmp_path / "out" / "rejected").glob("*.parquet"))


def test_sources_filter_applies_stage_to_matching_documents_only(ray_cluster, tmp_path):
    _corpus(tmp_path)
    other = tmp_path / "other.jsonl"
    _write_jsonl(other, ["tiny"] * 5)
    spec = _spec(tmp_path, "out")
    spec["inputs"].append({"path": str(other), "source": "keepme"})
    spec["stages"][0]["sources"] = ["te*"]
    res = run_pipeline(validate_spec(spec))
    kept = _rows(res.out_dir, "data")
    assert sum(r["source"] == "keepme" for r in kept) == 5
    assert res.manifest["counts"]["rejected"] == 20


def test_rejected_sampling_counts_everything_writes_a_sample(ray_cluster, tmp_path):
    _corpus(tmp_path)
    spec = _spec(tmp_path, "out")
    spec["output"]["rejected_sample"] = 0.0
    res = run_pipeline(validate_spec(spec))
    assert res.manifest["counts"]["rejected"] == 20
    assert _rows(res.out_dir, "rejected") == []


def test_ray_job_submit_runs_the_cli(ray_head, tmp_path):
    _corpus(tmp_path)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(_spec(tmp_path, "out")))
    env = dict(os.environ, RAY_ADDRESS=ray_head["dashboard"])
    ray_bin = str(Path(sys.executable).with_name("ray"))
    proc = subprocess.run(
        [ray_bin, "job", "submit", "--working-dir", str(REPO),
         "--runtime-env-json", json.dumps({"excludes": [".venv", "out", ".git", "examples/data/*.warc*"]}),
         "--", sys.executable, "-m", "curator", "run", str(spec_path)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"]["kept"] == 40
