"""eval_overlap: train documents sharing a long n-gram with eval are dropped (or flagged), eval untouched."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from curator.stages.eval_overlap import EvalOverlap, EvalOverlapConfig, overlap_tables

WORDS = [f"t{i}" for i in range(5000)]


def _text(rnd: random.Random, n: int) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def _table() -> pa.Table:
    rnd = random.Random(0)
    ev = _text(rnd, 80)
    passage = " ".join(ev.split()[20:40])  # 20 words of the eval document
    rows = [("e1", ev, "eval"), ("e2", _text(rnd, 50), "eval"),
            ("quote", _text(rnd, 30) + ", " + passage.upper() + "! " + _text(rnd, 30), "train"),
            ("short", " ".join(ev.split()[:12]), "train"),  # 12 shared words: no 13-gram
            ("clean", _text(rnd, 60), "train")]
    return pa.table({"id": [r[0] for r in rows], "text": [r[1] for r in rows], "split": [r[2] for r in rows]})


def _by_id(t: pa.Table, col: str) -> dict:
    return dict(zip(t.column("id").to_pylist(), t.column(col).to_pylist()))


def test_drops_train_documents_quoting_eval_only():
    out = overlap_tables([_table().slice(0, 2), _table().slice(2)], EvalOverlapConfig())
    counts = {**_by_id(out[0], "eval_overlap_ngrams"), **_by_id(out[1], "eval_overlap_ngrams")}
    assert counts == {"e1": 0, "e2": 0, "quote": 8, "short": 0, "clean": 0}  # 20 shared words: 8 13-grams
    assert _by_id(out[1], "drop_reason") == {"quote": "eval_overlap", "short": None, "clean": None}
    flagged = overlap_tables([_table()], EvalOverlapConfig(mode="flag", min_matches=9))[0]
    assert "drop_reason" not in flagged.column_names


def test_sampling_keeps_shared_ngrams_on_both_sides_or_neither():
    full = _by_id(overlap_tables([_table()], EvalOverlapConfig())[0], "eval_overlap_ngrams")
    for sample in (2, 3, 5):
        got = _by_id(overlap_tables([_table()], EvalOverlapConfig(sample=sample))[0], "eval_overlap_ngrams")
        assert got["clean"] == 0 and got["quote"] <= full["quote"]


def test_without_a_split_there_is_no_eval_set():
    table = _table().drop_columns(["split"])
    assert overlap_tables([table], EvalOverlapConfig())[0].column("eval_overlap_ngrams").to_pylist() == [0] * 5


@pytest.mark.ray
def test_on_ray_matches_in_memory(ray_cluster):
    import ray

    table = _table()
    ds = ray.data.from_arrow([table.slice(0, 2), table.slice(2, 2), table.slice(4)])
    out = pa.concat_tables(ray.get(EvalOverlap().run(ds).to_arrow_refs()))
    want = overlap_tables([table], EvalOverlapConfig())[0]
    assert _by_id(out, "eval_overlap_ngrams") == _by_id(want, "eval_overlap_ngrams")
    assert _by_id(out, "drop_reason") == _by_id(want, "drop_reason")
    with pytest.raises(ValueError, match="after the split stage"):
        EvalOverlap().run(ray.data.from_arrow(table.drop_columns(["split"])))
