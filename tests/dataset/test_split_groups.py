"""The split's near-duplicate grouping: near-copies never straddle train/eval, with or without dedup."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.stages.split import Split, SplitConfig, split_tables

VOCAB = [f"w{i}" for i in range(8000)]


def _words(rnd: random.Random, n: int) -> list[str]:
    return [rnd.choice(VOCAB) for _ in range(n)]


def _edited(words: list[str], rnd: random.Random, edits: int) -> list[str]:
    out = list(words)
    for _ in range(edits):
        out[rnd.randrange(len(out))] = rnd.choice(VOCAB)
    return out


def _families(seed: int, n: int = 40) -> tuple[pa.Table, dict[str, str]]:
    """``n`` families: a document, a copy with 2 edited words, one with its 5 paragraphs shuffled, one with
    a different header and footer (boilerplate-only difference); plus 40 unrelated documents."""
    rnd = random.Random(seed)
    ids, texts, family = [], [], {}
    for f in range(n):
        paras = [_words(rnd, 40) for _ in range(5)]
        base = [w for p in paras for w in p]
        shuffled = paras[:]
        rnd.shuffle(shuffled)
        variants = {
            "base": " ".join(base),
            "edit": " ".join(_edited(base, rnd, 2)),
            "shuffled": "\n\n".join(" ".join(p) for p in shuffled),
            "boiler": " ".join(["header"] + _words(rnd, 6) + base + ["footer"] + _words(rnd, 6)),
        }
        for name, text in variants.items():
            ids.append(f"f{f:02d}-{name}")
            texts.append(text)
            family[ids[-1]] = f"f{f}"
    for i in range(40):
        ids.append(f"solo{i:02d}")
        texts.append(" ".join(_words(rnd, 200)))
        family[ids[-1]] = ids[-1]
    order = list(range(len(ids)))
    rnd.shuffle(order)
    return pa.table({"id": [ids[i] for i in order], "text": [texts[i] for i in order]}), family


def _sides(tables: list[pa.Table], family: dict[str, str]) -> dict[str, set[str]]:
    sides: dict[str, set[str]] = defaultdict(set)
    for t in tables:
        for i, s in zip(t.column("id").to_pylist(), t.column("split").to_pylist()):
            sides[family[i]].add(s)
    return sides


@pytest.mark.parametrize("seed", range(5))
def test_near_copies_land_on_one_side_without_dedup(seed):
    table, family = _families(seed)
    out = split_tables([table.slice(0, 70), table.slice(70)], SplitConfig(eval_fraction=0.5), seed)
    sides = _sides(out, family)
    assert all(len(s) == 1 for s in sides.values()), {k: v for k, v in sides.items() if len(v) > 1}
    assert {s for v in sides.values() for s in v} == {"train", "eval"}
    # without the grouping the same input does straddle: the test input would catch a missing grouping
    loose = _sides(split_tables([table], SplitConfig(eval_fraction=0.5, group_near_duplicates=False), seed), family)
    assert sum(len(s) > 1 for s in loose.values()) >= 10
    groups = {g for t in out for g in t.column("split_group").to_pylist()}
    assert len(groups) == 40 + 40  # one key per family, one per unrelated document


def test_dedup_clusters_and_grouping_join():
    table, family = _families(7, n=10)
    # dedup clustered two members of family 0 under an id that is not the smallest key of the family
    dup = [("f00-boiler" if i in ("f00-edit", "f00-boiler") else None) for i in table.column("id").to_pylist()]
    table = table.append_column("dup_cluster", pa.array(dup, pa.string()))
    out = split_tables([table], SplitConfig(eval_fraction=0.5), 0)[0]
    keys = dict(zip(out.column("id").to_pylist(), out.column("split_group").to_pylist()))
    assert {keys[f"f00-{v}"] for v in ("base", "edit", "shuffled", "boiler")} == {"f00-base"}
    assert keys["solo00"] == "solo00"


def test_without_text_the_split_is_the_plain_key_rule():
    table = pa.table({"id": [f"d{i}" for i in range(50)]})
    a = split_tables([table], SplitConfig(eval_fraction=0.3), 3)[0]
    b = split_tables([table], SplitConfig(eval_fraction=0.3, group_near_duplicates=False), 3)[0]
    assert a.column("split").to_pylist() == b.column("split").to_pylist()


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10**6), st.lists(st.integers(1, 5), min_size=1, max_size=8))
def test_random_clusters_never_straddle(seed, sizes):
    rnd = random.Random(seed)
    ids, texts, family = [], [], {}
    for c, size in enumerate(sizes):
        base = _words(rnd, rnd.randint(60, 200))
        for k in range(size):
            ids.append(f"c{c}-{k}")
            texts.append(" ".join(_edited(base, rnd, rnd.randint(0, len(base) // 100 + 1))))
            family[ids[-1]] = f"c{c}"
    order = np.random.default_rng(seed).permutation(len(ids))
    table = pa.table({"id": [ids[i] for i in order], "text": [texts[i] for i in order]})
    sides = _sides(split_tables([table], SplitConfig(eval_fraction=0.5), seed), family)
    assert all(len(s) == 1 for s in sides.values())


@pytest.mark.ray
@pytest.mark.parametrize("local_max_pairs", [0, 1_000_000], ids=["distributed", "via-driver"])
def test_split_on_ray_matches_in_memory(ray_cluster, local_max_pairs):
    import ray

    table, family = _families(11, n=20)
    cfg = SplitConfig(eval_fraction=0.5, local_max_pairs=local_max_pairs)
    expected = split_tables([table], cfg, 2)[0]
    ds = ray.data.from_arrow([table.slice(i, 25) for i in range(0, table.num_rows, 25)])
    out = pa.concat_tables(ray.get(Split(cfg).run(ds, seed=2).to_arrow_refs()))
    got = dict(zip(out.column("id").to_pylist(), zip(out.column("split").to_pylist(),
                                                    out.column("split_group").to_pylist())))
    want = dict(zip(expected.column("id").to_pylist(), zip(expected.column("split").to_pylist(),
                                                          expected.column("split_group").to_pylist())))
    assert got == want
