"""trainer.data: sources, holdout, packing boundaries, windows, resumable order."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.data import (
    Windows,
    encode_texts,
    eval_windows,
    find_sources,
    in_eval,
    open_tokens,
    prepare,
)
from trainer.tokenizer import load_tokenizer


def test_packing_puts_one_boundary_after_each_document(tokenizer_path):
    tok = load_tokenizer(tokenizer_path)
    docs = ["first document.", "second, longer document here", "3"]
    arr = encode_texts(tok, docs, 0)
    expected = []
    for d in docs:
        expected += tok.encode(d, add_special_tokens=False).ids + [0]
    assert arr.tolist() == expected
    pieces = np.split(arr, np.flatnonzero(arr == 0) + 1)
    assert pieces[-1].size == 0
    assert [tok.decode(p[:-1].tolist()) for p in pieces[:-1]] == docs


def test_prepare_writes_uint16_shards_that_decode_back(job, tokenizer_path, tmp_path):
    meta = prepare(job, tmp_path / "w", tokenizer=tokenizer_path, workers=2, backend="pool")
    assert meta["dtype"] == "uint16" and meta["eot_id"] == 0 and not meta["split_here"]
    tok = load_tokenizer(tokenizer_path)
    ev = open_tokens(tmp_path / "w" / "eval.bin", "uint16")
    assert len(ev) == meta["eval"]["tokens"] and int((ev == 0).sum()) == 40  # 40 eval documents
    first = ev[: int(np.flatnonzero(ev == 0)[0])]
    import pyarrow.parquet as pq

    assert tok.decode(first.tolist()) == pq.read_table(job / "eval" / "part-0.parquet")["text"][0].as_py()
    tr = open_tokens(tmp_path / "w" / "train.bin", "uint16")
    assert int((tr == 0).sum()) == 360
    # a second call reuses the files (same manifest and tokenizer hashes)
    mtime = (tmp_path / "w" / "train.bin").stat().st_mtime_ns
    assert prepare(job, tmp_path / "w", tokenizer=tokenizer_path) == meta
    assert (tmp_path / "w" / "train.bin").stat().st_mtime_ns == mtime
    assert json.loads((tmp_path / "w" / "meta.json").read_text())["manifest_hash"] == meta["manifest_hash"]


def test_process_pool_and_serial_give_identical_bytes(job, tokenizer_path, tmp_path):
    prepare(job, tmp_path / "a", tokenizer=tokenizer_path, workers=1, backend="pool")
    prepare(job, tmp_path / "b", tokenizer=tokenizer_path, workers=2, backend="pool")
    for split in ("train", "eval"):
        assert (tmp_path / "a" / f"{split}.bin").read_bytes() == (tmp_path / "b" / f"{split}.bin").read_bytes()


def test_data_folder_is_split_by_id_hash(tmp_path, paragraphs, tokenizer_path, make_job):
    job = make_job(tmp_path / "job", paragraphs[:200], None)
    src = find_sources(job, 0.25)
    assert src["train"].holdout == "train" and src["eval"].holdout == "eval"
    meta = prepare(job, tmp_path / "w", tokenizer=tokenizer_path, eval_fraction=0.25, backend="pool")
    n_eval = int(in_eval([f"d{i}" for i in range(200)], 0.25).sum())
    assert 25 < n_eval < 75
    assert int((open_tokens(tmp_path / "w" / "eval.bin", "uint16") == 0).sum()) == n_eval
    assert int((open_tokens(tmp_path / "w" / "train.bin", "uint16") == 0).sum()) == 200 - n_eval
    assert meta["split_here"]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=50, unique=True),
       st.floats(0.05, 0.95))
def test_holdout_is_deterministic_and_monotone(ids, frac):
    a = in_eval(ids, frac)
    assert np.array_equal(a, in_eval(list(reversed(ids)), frac)[::-1])
    assert np.all(in_eval(ids, min(1.0, frac + 0.04)) >= a)  # growing the fraction only adds


def test_null_and_empty_texts_are_skipped_and_counted(tmp_path, tokenizer_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    job = tmp_path / "job"
    for split in ("train", "eval"):
        (job / split).mkdir(parents=True)
        pq.write_table(pa.table({"id": ["a", "b", "c"], "text": ["good text", None, ""]}),
                       job / split / "p.parquet")
    meta = prepare(job, tmp_path / "w", tokenizer=tokenizer_path, backend="pool")
    assert meta["train"]["skipped_rows"] == 2 and meta["manifest_hash"] is None


def test_missing_inputs_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Parquet"):
        find_sources(tmp_path)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "x.parquet").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="eval"):
        find_sources(tmp_path)


def test_windows_are_a_function_of_seed_and_step():
    tokens = np.arange(1000, dtype=np.uint16)
    w = Windows(tokens, 8, seed=3)
    x, y = w.batch(5, 4)
    assert x.shape == (4, 8) and x.dtype == np.int64
    assert np.array_equal(y[:, :-1], x[:, 1:]) and np.array_equal(y[:, -1], x[:, -1] + 1)
    assert np.array_equal(w.batch(5, 4)[0], x)
    assert not np.array_equal(w.batch(6, 4)[0], x)
    assert not np.array_equal(Windows(tokens, 8, seed=4).batch(5, 4)[0], x)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(0, 50))
def test_any_split_of_the_global_batch_reads_the_same_windows(world, accum, b, step):
    tokens = np.arange(500, dtype=np.uint32)
    w = Windows(tokens, 6, seed=1)
    one = w.batch(step, b * world * accum)[0]
    parts = [w.batch(step, b, m, accum, r, world)[0] for m in range(accum) for r in range(world)]
    assert np.array_equal(np.concatenate(parts), one)


def test_eval_windows_cover_consecutive_blocks_across_ranks():
    tokens = np.arange(101, dtype=np.uint16)
    all_x = np.concatenate([x for x, _ in eval_windows(tokens, 10, 3, 0)])
    assert all_x[:, 0].tolist() == list(range(0, 100, 10))
    r0 = [x for x, _ in eval_windows(tokens, 10, 2, 0, rank=0, world=2)]
    r1 = [x for x, _ in eval_windows(tokens, 10, 2, 0, rank=1, world=2)]
    starts = sorted(np.concatenate(r0 + r1)[:, 0].tolist())
    assert starts == list(range(0, 100, 10))
    with pytest.raises(ValueError, match="fewer than one block"):
        next(eval_windows(tokens[:5], 10, 1, 0))


def test_sources_are_the_files_the_manifest_lists(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainer.data import find_sources

    for name in ("train/a.parquet", "train/stale.parquet", "eval/b.parquet"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        pq.write_table(pa.table({"id": ["x"], "text": ["y"]}), tmp_path / name)
    (tmp_path / "manifest.json").write_text(json.dumps({"spec_sha256": "0", "files": [
        {"path": "train/a.parquet", "subset": "train"}, {"path": "eval/b.parquet", "subset": "eval"}]}))
    got = find_sources(tmp_path)
    assert got["train"].files == (str(tmp_path / "train/a.parquet"),)
    assert got["eval"].files == (str(tmp_path / "eval/b.parquet"),)
    (tmp_path / "manifest.json").unlink()
    (tmp_path / "_curator").mkdir()
    with pytest.raises(FileNotFoundError, match="unfinished curator output"):
        find_sources(tmp_path)
