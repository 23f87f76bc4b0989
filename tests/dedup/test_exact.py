"""Exact dedup: the per-block kernel on crafted tables, and the stage on the session Ray cluster."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.dedup.exact import ExactDedup, ExactDedupConfig, dedup_table
from curator.schema import core_table


def _by_id(table: pa.Table) -> dict[str, tuple]:
    d = table.to_pydict()
    return {i: (c, o, r) for i, c, o, r in zip(d["id"], d["dup_cluster"], d["dup_of"], d["drop_reason"],
                                               strict=True)}


def test_normalized_copies_keep_smallest_id():
    t = core_table({"id": ["d", "b", "a", "c", "e"],
                    "text": ["Hello  World\n", "x", "hello world", None, ""]})
    assert _by_id(dedup_table(t)) == {
        "a": ("a", None, None),
        "d": ("a", "a", "exact_duplicate"),
        "b": (None, None, None),
        "c": ("c", None, None),  # null text counts as empty text
        "e": ("c", "c", "exact_duplicate"),
    }


def test_one_id_in_two_rows_keeps_the_earlier_input_row_whatever_the_order():
    """The same WARC copied into two inputs gives two rows with one id and one text: the row read first
    (smaller _rowkey) stays, in whichever order the shuffle delivers them."""
    t = core_table({"id": ["x", "x", "y"], "text": ["same text", "same text", "same text"]})
    t = t.append_column("_rowkey", pa.array([(1 << 40) + 7, 3, 9], pa.int64()))
    for order in ([0, 1, 2], [1, 0, 2], [2, 1, 0]):
        out = dedup_table(t.take(pa.array(order))).to_pydict()
        kept = [k for k, r in zip(out["_rowkey"], out["drop_reason"], strict=True) if r is None]
        assert kept == [3], (order, out)


def test_case_and_punctuation_options():
    t = core_table({"id": ["1", "2", "3"], "text": ["Hi, there!", "hi there", "HI THERE"]})
    assert _by_id(dedup_table(t, ExactDedupConfig(lowercase=False)))["3"] == (None, None, None)
    strict = _by_id(dedup_table(t))
    assert strict["2"] == ("2", None, None) and strict["3"] == ("2", "2", "exact_duplicate")
    loose = _by_id(dedup_table(t, ExactDedupConfig(strip_punctuation=True)))
    assert loose["1"] == ("1", None, None) and loose["3"][1] == "1"


def test_keep_longest_and_score():
    t = core_table({"id": ["a", "b", "c"], "text": ["same text", "same  text", "same text "]})
    longest = _by_id(dedup_table(t, ExactDedupConfig(keep="longest")))
    assert longest["b"] == ("b", None, None) and longest["a"][1] == "b"  # "same  text" is longest
    t = t.append_column("q", pa.array([0.1, None, 0.7]))
    scored = _by_id(dedup_table(t, ExactDedupConfig(keep="score", score_column="q")))
    assert scored["c"] == ("c", None, None) and scored["a"][1] == "c" and scored["b"][1] == "c"
    with pytest.raises(ValueError, match="score_column"):
        dedup_table(t, ExactDedupConfig(keep="score"))


def test_existing_drop_reason_column_is_kept():
    t = core_table({"id": ["a", "b"], "text": ["x", "x"]}).append_column(
        "drop_reason", pa.array([None, None], pa.string()))
    assert _by_id(dedup_table(t))["b"] == ("a", "a", "exact_duplicate")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a b", "A  b", "c", "d d", ""]), min_size=1, max_size=30),
       st.randoms(use_true_random=False))
def test_one_kept_per_text_independent_of_order(texts, rnd):
    ids = [f"{i:03d}" for i in range(len(texts))]
    rows = list(zip(ids, texts, strict=True))
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    a = _by_id(dedup_table(core_table({"id": [r[0] for r in rows], "text": [r[1] for r in rows]})))
    b = _by_id(dedup_table(core_table({"id": [r[0] for r in shuffled], "text": [r[1] for r in shuffled]})))
    assert a == b
    kept_norm = [" ".join(t.lower().split()) for i, t in rows if a[i][1] is None]
    assert sorted(kept_norm) == sorted({" ".join(t.lower().split()) for t in texts})
    for i, t in rows:  # every removed doc points at the smallest id holding the same text
        if a[i][1] is not None:
            same = [j for j, u in rows if " ".join(u.lower().split()) == " ".join(t.lower().split())]
            assert a[i][1] == min(same) != i


@pytest.mark.ray
def test_exact_dedup_on_ray_many_blocks(ray_cluster):
    import ray

    n = 300
    texts = [f"doc number {i % 97}" + (" " if i % 2 else "") for i in range(n)]
    table = core_table({"id": [f"{i:04d}" for i in range(n)], "text": texts, "source": ["t"] * n})
    ds = ray.data.from_arrow([table.slice(i, 50) for i in range(0, n, 50)])
    assert ds.num_blocks() > 1
    out = ExactDedup(num_partitions=3).run(ds, seed=0).materialize()
    rows = pa.concat_tables(ray.get(out.to_arrow_refs()))
    assert rows.num_rows == n
    got = _by_id(rows)
    assert got == _by_id(dedup_table(table))  # same answer as the single-table kernel
    kept = [i for i, v in got.items() if v[1] is None]
    assert len(kept) == 97 and sorted(kept) == [f"{i:04d}" for i in range(97)]
    again = ExactDedup(num_partitions=2).run(ds.repartition(4), seed=0)
    assert _by_id(pa.concat_tables(ray.get(again.to_arrow_refs()))) == got
