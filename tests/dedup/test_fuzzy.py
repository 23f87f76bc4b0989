"""Fuzzy dedup end to end: in-memory kernels on crafted corpora, then the stage on the Ray cluster."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.dedup.fuzzy import FuzzyDedup, FuzzyDedupConfig, dedup_table
from curator.dedup.minhash import jaccard_sorted, shingle_sets
from curator.schema import core_table

VOCAB = [f"tok{i}" for i in range(5000)]
# many bands of few rows: a pair at Jaccard >= 0.8 is a candidate with probability 1 - 1e-7
SURE = {"num_perm": 128, "bands": 32, "rows": 4}


def _doc(rnd: random.Random, n: int = 100) -> list[str]:
    return [rnd.choice(VOCAB) for _ in range(n)]


def _edit(words: list[str], positions: list[int]) -> list[str]:
    out = list(words)
    for p in positions:
        out[p] = "EDITED"
    return out


def _result(table: pa.Table) -> dict[str, tuple]:
    d = table.to_pydict()
    return {i: (c, o, r) for i, c, o, r in zip(d["id"], d["dup_cluster"], d["dup_of"], d["drop_reason"],
                                               strict=True)}


def _jaccard(a: str, b: str, n: int = 5) -> float:
    sh = shingle_sets(pa.array([a, b]), n, seed=0)
    return jaccard_sorted(sh.values[sh.offsets[0]: sh.offsets[1]], sh.values[sh.offsets[1]: sh.offsets[2]])


def test_chain_removes_only_docs_with_a_kept_partner():
    rnd = random.Random(1)
    a = _doc(rnd)
    b = _edit(a, [20, 60])
    c = _edit(b, [40, 80])
    texts = {"a": " ".join(a), "b": " ".join(b), "c": " ".join(c), "z": " ".join(_doc(rnd))}
    assert _jaccard(texts["a"], texts["b"]) >= 0.8 and _jaccard(texts["b"], texts["c"]) >= 0.8
    assert _jaccard(texts["a"], texts["c"]) < 0.8
    table = core_table({"id": list(texts), "text": list(texts.values())})
    got = _result(dedup_table(table, FuzzyDedupConfig(**SURE)))
    assert got == {"a": ("a", None, None), "b": ("a", "a", "near_duplicate"), "c": ("a", None, None),
                   "z": (None, None, None)}
    # without verification the whole connected component collapses onto its first member
    loose = _result(dedup_table(table, FuzzyDedupConfig(verify=False, **SURE)))
    assert loose["c"] == ("a", "a", "near_duplicate") and loose["b"][1] == "a"


def test_keep_longest_and_score_and_earlier_cluster():
    rnd = random.Random(2)
    a = _doc(rnd)
    texts = [" ".join(a), " ".join(a + ["tail"]), " ".join(_edit(a, [50]))]
    table = core_table({"id": ["x", "y", "z"], "text": texts}).append_column(
        "dup_cluster", pa.array([None, None, "q"], pa.string()))
    longest = _result(dedup_table(table, FuzzyDedupConfig(keep="longest", **SURE)))
    assert longest["y"] == ("y", None, None) and longest["x"][1] == "y" and longest["z"][1] == "y"
    scored = table.append_column("quality", pa.array([0.2, 0.1, 0.9]))
    best = _result(dedup_table(scored, FuzzyDedupConfig(keep="score", score_column="quality", **SURE)))
    assert best["z"] == ("z", None, None) and best["x"][1] == "z"
    alone = core_table({"id": ["p"], "text": ["lonely words"]}).append_column(
        "dup_cluster", pa.array(["p0"], pa.string()))
    assert _result(dedup_table(alone))["p"] == ("p0", None, None)  # earlier stage's cluster survives


def test_config_errors():
    with pytest.raises(ValueError, match="together"):
        FuzzyDedupConfig(bands=4)
    with pytest.raises(ValueError, match="exceed"):
        FuzzyDedupConfig(num_perm=16, bands=8, rows=4)
    with pytest.raises(ValueError, match="score_column"):
        FuzzyDedupConfig(keep="score")
    with pytest.raises(ValueError, match="no column"):
        dedup_table(core_table({"id": ["a"], "text": ["x"]}), FuzzyDedupConfig(keep="score", score_column="q"))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6), st.integers(2, 6))
def test_copies_always_cluster_and_unrelated_never(seed, copies):
    rnd = random.Random(seed)
    base = _doc(rnd, rnd.randint(8, 120))
    variants = [" ".join(base)] + [
        ("  ".join(base).upper() if k % 2 else " ".join(base) + " !") for k in range(1, copies)]
    others = [" ".join(_doc(rnd, rnd.randint(1, 120))) for _ in range(6)]
    ids = [f"c{k}" for k in range(copies)] + [f"o{k}" for k in range(6)]
    order = list(range(len(ids)))
    rnd.shuffle(order)
    texts = variants + others
    table = core_table({"id": [ids[i] for i in order], "text": [texts[i] for i in order]})
    got = _result(dedup_table(table, FuzzyDedupConfig(), seed=seed))
    assert got["c0"] == ("c0", None, None)
    for k in range(1, copies):
        assert got[f"c{k}"] == ("c0", "c0", "near_duplicate")
    for k in range(6):  # random draws from 5000 words: Jaccard ~0, far below the threshold
        assert got[f"o{k}"] == (None, None, None)


def test_same_output_for_any_row_order():
    rnd = random.Random(3)
    texts, ids = [], []
    for i in range(60):
        words = _doc(rnd)
        texts.append(" ".join(words))
        ids.append(f"{i:03d}")
        for j in range(i % 3):
            texts.append(" ".join(_edit(words, [rnd.randrange(100)])))
            ids.append(f"{i:03d}-{j}")
    table = core_table({"id": ids, "text": texts})
    first = _result(dedup_table(table, seed=5))
    perm = np.random.default_rng(0).permutation(table.num_rows)
    assert _result(dedup_table(table.take(pa.array(perm)), seed=5)) == first
    assert sum(v[1] is not None for v in first.values()) == 60


@pytest.mark.ray
@pytest.mark.parametrize("local_max_pairs", [0, 1_000_000], ids=["distributed", "via-driver"])
def test_fuzzy_dedup_on_ray_matches_in_memory(ray_cluster, local_max_pairs):
    import ray

    rnd = random.Random(4)
    texts, ids = [], []
    for i in range(120):
        words = _doc(rnd)
        texts.append(" ".join(words))
        ids.append(f"{i:03d}")
        if i % 4 == 0:  # a chain of three, like the crafted chain test
            b = _edit(words, [20, 60])
            texts += [" ".join(b), " ".join(_edit(b, [40, 80]))]
            ids += [f"{i:03d}b", f"{i:03d}c"]
    texts.append("")
    ids.append("empty")
    table = core_table({"id": ids, "text": texts, "source": ["t"] * len(ids)})
    # 0: every step a distributed shuffle; else pairs, components and the removal map go through the driver
    cfg = {**SURE, "num_partitions": 3, "local_max_pairs": local_max_pairs}
    expected = _result(dedup_table(table, FuzzyDedupConfig(**cfg), seed=9))
    assert sum(v[1] is not None for v in expected.values()) == 30  # the middle of each chain
    shuffled = table.take(pa.array(np.random.default_rng(0).permutation(table.num_rows)))
    ds = ray.data.from_arrow([shuffled.slice(i, 40) for i in range(0, table.num_rows, 40)])
    assert ds.num_blocks() == 5  # duplicates of one family sit in different blocks
    out = pa.concat_tables(ray.get(FuzzyDedup(**cfg).run(ds, seed=9).to_arrow_refs()))
    assert out.num_rows == table.num_rows
    assert _result(out) == expected
    assert set(out.column_names) == {"id", "dup_cluster", "dup_of", "drop_reason"}  # the text stays behind
    assert not [c for c in out.column_names if c.startswith("_")]


@pytest.mark.ray
def test_driver_verification_with_empty_many_and_cross_blocks(ray_cluster):
    """Regression (issue 19): an empty block without columns reached the pairwise verification and failed
    with KeyError '_vid'; more than 32 candidate blocks are repartitioned; no pairs gives no edges."""
    import ray

    from curator.dedup.fuzzy import MAX_PAIR_BLOCKS, _verify_by_blocks, candidate_docs, sign

    rnd = random.Random(7)
    texts, ids = [], []
    for i in range(40):
        words = _doc(rnd)
        texts += [" ".join(words), " ".join(_edit(words, [10]))]
        ids += [f"{i:02d}a", f"{i:02d}b"]
    cfg = FuzzyDedupConfig(**SURE)
    signed = candidate_docs(sign(core_table({"id": ids, "text": texts}), cfg, 0, 32, 4))
    vid = dict(zip(signed.column("id").to_pylist(), signed.column("_vid").to_pylist()))
    # pair b's block is far from a's: every pair crosses blocks; empty tables in between
    blocks = [signed.slice(i, 1) for i in range(0, 80, 2)] + [pa.table({})] * 5 + \
             [signed.slice(i, 1) for i in range(1, 80, 2)]
    docs = ray.data.from_arrow(blocks)
    assert docs.num_blocks() > MAX_PAIR_BLOCKS
    pairs = pa.table({"u": pa.array([vid[f"{i:02d}a"] for i in range(40)], pa.int64()),
                      "v": pa.array([vid[f"{i:02d}b"] for i in range(40)], pa.int64())})
    kept = _verify_by_blocks(pairs, docs, 0.8)
    assert sorted(zip(kept.column("u").to_pylist(), kept.column("v").to_pylist())) == \
        sorted(zip(pairs.column("u").to_pylist(), pairs.column("v").to_pylist()))
    empty_pairs = pairs.slice(0, 0)
    assert _verify_by_blocks(empty_pairs, docs, 0.8).num_rows == 0
    only_empty = ray.data.from_arrow([pa.table({})] * 40)
    assert _verify_by_blocks(empty_pairs, only_empty, 0.8).num_rows == 0
