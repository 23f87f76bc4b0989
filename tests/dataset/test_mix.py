"""Mix stage: exact targets, deterministic, up-sampled copies with new ids, down-sampled drops."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from curator.stages.mix import Mix, MixConfig, mix_tables
from curator.stages.split import SplitConfig, split_tables


def _corpus(sizes: dict[str, int], text_len=None) -> pa.Table:
    ids, src, text = [], [], []
    rng = np.random.default_rng(1)
    for s, n in sizes.items():
        for i in range(n):
            ids.append(f"{s}-{i}")
            src.append(s)
            text.append("x" * (int(rng.integers(50, 500)) if text_len is None else text_len))
    return pa.table({"id": ids, "source": src, "text": text})


def _live(tables: list[pa.Table]) -> list[dict]:
    return [r for t in tables for r in t.to_pylist() if r["drop_reason"] is None]


def _chunks(t: pa.Table, n: int) -> list[pa.Table]:
    return [t.slice(i, n) for i in range(0, t.num_rows, n)]


def test_upsampling_keeps_the_core_schema():
    from curator.schema import core_table

    table = core_table({"id": ["a", "b", "c"], "text": ["x", "y", "z"], "source": ["s", "s", "t"]})
    out = mix_tables([table], MixConfig(weights={"s": 1, "t": 1}, total=6), 0)[0]
    assert out.schema.field("id") == table.schema.field("id")  # non-nullable id survives the copies
    ids = sorted(r["id"] for r in _live([out]))  # s: 3 of 2 docs (one copied, by hash); t: 3 of 1
    assert len(ids) == 6 and {"a", "b", "c", "c#mix1", "c#mix2"} <= set(ids)
    assert len({"a#mix1", "b#mix1"} & set(ids)) == 1


def test_default_total_is_the_largest_mix_without_upsampling():
    table = _corpus({"web": 700, "code": 200, "books": 100})
    out = mix_tables(_chunks(table, 128), MixConfig(weights={"web": 0.6, "code": 0.2, "books": 0.2}), 0)
    live = _live(out)
    assert Counter(r["source"] for r in live) == {"web": 300, "code": 100, "books": 100}
    dropped = [r for t in out for r in t.to_pylist() if r["drop_reason"] is not None]
    assert Counter(r["drop_reason"] for r in dropped) == {"mix_downsampled": 500}
    assert all(r["mix_copy"] == 0 and r["mix_of"] is None for r in live)


def test_upsampling_repeats_with_new_ids_and_records_the_original():
    table = _corpus({"web": 700, "code": 200, "books": 30})
    out = mix_tables(_chunks(table, 100), MixConfig(weights={"web": 6, "code": 2, "books": 2}, total=1000), 0)
    live = _live(out)
    assert Counter(r["source"] for r in live) == {"web": 600, "code": 200, "books": 200}
    books = [r for r in live if r["source"] == "books"]
    per_original = Counter(r["mix_of"] or r["id"] for r in books)
    assert set(per_original.values()) == {6, 7}  # 200 = 6 * 30 + 20 extra copies
    assert sum(v == 7 for v in per_original.values()) == 20
    assert len({r["id"] for r in live}) == len(live)
    for r in books:
        if r["mix_copy"]:
            assert r["id"] == f"{r['mix_of']}#mix{r['mix_copy']}" and r["text"]
    assert Counter(r["mix_copy"] for r in books)[0] == 30


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 150), min_size=1, max_size=4), data=st.data(), seed=st.integers(0, 99))
def test_shares_are_met_within_one_document_and_batching_does_not_matter(sizes, data, seed):
    names = [f"s{i}" for i in range(len(sizes))]
    weights = {n: data.draw(st.floats(0.05, 1.0)) for n in names}
    total = data.draw(st.integers(0, 600) | st.none())
    table = _corpus(dict(zip(names, sizes)), text_len=10)
    cfg = MixConfig(weights=weights, total=total, seed=seed)
    live = _live(mix_tables(_chunks(table, 37), cfg, 0))
    got = Counter(r["source"] for r in live)
    shares = np.array(list(weights.values())) / sum(weights.values())
    grand = total if total is not None else min(s / w for s, w in zip(sizes, shares))
    for name, share in zip(names, shares):
        assert abs(got[name] - share * grand) <= 1
    again = _live(mix_tables([table], cfg, 0))
    assert sorted(r["id"] for r in again) == sorted(r["id"] for r in live)


def test_char_shares_within_tolerance_and_globs():
    table = _corpus({"pile/ArXiv": 300, "pile/Github": 300, "cc": 500, "other": 50})
    cfg = MixConfig(weights={"cc": 0.5, "pile/*": 0.5}, by="chars", total=200_000)
    live = _live(mix_tables(_chunks(table, 200), cfg, 4))
    chars = Counter()
    for r in live:
        chars["pile" if r["source"].startswith("pile/") else r["source"]] += len(r["text"])
    assert "other" not in chars  # matches no key: weight 0
    for key in ("cc", "pile"):
        assert 100_000 - 500 < chars[key] <= 100_000  # within one document of the target


def test_mixed_copies_stay_together_in_the_split():
    table = _corpus({"a": 40, "b": 10})
    mixed = mix_tables([table], MixConfig(weights={"a": 1, "b": 1}, total=200), 0)
    live = pa.Table.from_pylist(_live(mixed))
    split = split_tables([live], SplitConfig(eval_fraction=0.3), 0)[0]
    sides: dict[str, set] = {}
    for r in split.to_pylist():
        sides.setdefault(r["mix_of"] or r["id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values())
    assert {"train", "eval"} == set().union(*sides.values())


def test_bad_weights_are_clear_errors():
    with pytest.raises(ValidationError):
        MixConfig(weights={})
    with pytest.raises(ValidationError):
        MixConfig(weights={"a": -1, "b": 2})
    with pytest.raises(ValueError, match="no documents.*'books'"):
        mix_tables([_corpus({"web": 5})], MixConfig(weights={"web": 1, "books": 1}), 0)
    with pytest.raises(KeyError, match="mix column 'lang'"):
        mix_tables([_corpus({"web": 5})], MixConfig(column="lang", weights={"en": 1}), 0)


@pytest.mark.ray
def test_run_on_a_ray_dataset_matches_the_in_memory_mix(ray_cluster):
    import ray

    table = _corpus({"web": 120, "code": 30, "books": 10})
    cfg = MixConfig(weights={"web": 0.5, "code": 0.3, "books": 0.2}, total=150)
    out = Mix(cfg).run(ray.data.from_arrow(_chunks(table, 40)), seed=2)
    got = sorted((r["id"], r["drop_reason"]) for r in out.take_all())
    want = sorted((r["id"], r["drop_reason"]) for t in mix_tables([table], cfg, 2) for r in t.to_pylist())
    assert got == want
