"""Paragraph dedup: exact outputs of the in-memory kernels, a reference model, and the stage on Ray."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.dedup.paragraph import ParagraphDedup, ParagraphDedupConfig, dedup_table, split_units
from curator.schema import core_table

BOILER = "Subscribe to our newsletter to get the latest news every week."
COOKIE = "This site uses cookies to improve your experience."


def _run(texts: dict[str, str | None], **cfg) -> dict[str, tuple]:
    """id -> (text, units removed, chars removed, drop_reason)."""
    table = core_table({"id": list(texts), "text": list(texts.values())})
    return _rows(dedup_table(table, ParagraphDedupConfig(**cfg)))


def _rows(table: pa.Table) -> dict[str, tuple]:
    d = table.to_pydict()
    return {i: (t, r, c, why) for i, t, r, c, why in zip(
        d["id"], d["text"], d["para_dup_removed"], d["para_dup_chars_removed"], d["drop_reason"], strict=True)}


def test_split_units_keeps_every_byte():
    text = pa.array(["a\n\nb\n \t\nc\nd\n", "\n\nx", "", None, "y\r\n\r\nz"])
    para = split_units(text, "paragraph")
    assert para.pieces.to_pylist() == ["a", "\n\n", "b", "\n \t\n", "c\nd\n", "", "\n\n", "x", "", "",
                                       "y\r", "\n\r\n", "z"]
    assert para.first.tolist() == [0, 3, 5, 6, 7, 9]
    line = split_units(text, "line")
    assert line.pieces.to_pylist()[:10] == ["a", "\n\n", "b", "\n \t\n", "c", "\n", "d", "\n", "", ""]
    assert line.position.tolist()[:6] == [0, 1, 2, 3, 4, 0]


def test_boilerplate_paragraph_removed_from_all_but_the_first_doc():
    got = _run({
        "c": f"Story C starts here and goes on.\n\n{BOILER}\n\nStory C ends.",
        "a": f"{BOILER}\n\nStory A is about something else.",
        "b": f"Story B opens.\n\n\n{BOILER}",
    })
    assert got == {
        "a": (f"{BOILER}\n\nStory A is about something else.", 0, 0, None),  # smallest id keeps it
        "b": ("Story B opens.", 1, len(BOILER) + 3, None),
        "c": ("Story C starts here and goes on.\n\nStory C ends.", 1, len(BOILER) + 2, None),
    }


def test_normalized_copies_match_and_punctuation_option():
    texts = {"1": f"Intro one here.\n\n{BOILER}", "2": f"Intro two here.\n\n{BOILER.upper()}  ",
             "3": f"Intro three here.\n\n{BOILER.replace('.', '!').replace(' ', '   ')}"}
    got = _run(texts)
    assert got["2"] == ("Intro two here.", 1, len(BOILER) + 4, None)
    assert got["3"][1] == 0  # punctuation differs
    loose = _run(texts, strip_punctuation=True)
    assert loose["3"] == ("Intro three here.", 1, len(texts["3"]) - len("Intro three here."), None)
    assert _run(texts, lowercase=False)["2"][1] == 0


def test_min_docs():
    texts = {"a": f"{BOILER}\n\n{COOKIE}\n\nA's own paragraph.", "b": f"{BOILER}\n\nB's own paragraph.",
             "c": f"{COOKIE}\n\nC's own paragraph.", "d": f"{COOKIE}\n\nD's own paragraph."}
    two = _run(texts)
    assert [two[i][1] for i in "abcd"] == [0, 1, 1, 1]
    three = _run(texts, min_docs=3)  # BOILER is in 2 docs only: kept everywhere
    assert three["b"] == (texts["b"], 0, 0, None)
    assert three["c"][0] == "C's own paragraph." and three["d"][0] == "D's own paragraph."
    assert three["a"] == (texts["a"], 0, 0, None)
    assert _run(texts, min_docs=4) == {i: (t, 0, 0, None) for i, t in texts.items()}


def test_short_units_are_never_the_criterion():
    texts = {"a": "Home\nReply\nThe first article text is long enough.",
             "b": "Home\nReply\nAnother article, quite different from A."}
    assert _run(texts, unit="line") == {i: (t, 0, 0, None) for i, t in texts.items()}
    low = _run(texts, unit="line", min_unit_chars=4)
    assert low["b"] == ("Another article, quite different from A.", 2, 11, None)
    assert low["a"] == (texts["a"], 0, 0, None)
    # the limit is on the normalized unit: "  Home  " folds to 4 characters
    pair = {"a": "  Home  \nx", "b": "  home  \ny"}
    assert _run(pair, unit="line", min_unit_chars=5)["b"][1] == 0
    assert _run(pair, unit="line", min_unit_chars=4)["b"] == ("y", 1, 9, None)


def test_doc_left_empty_or_too_short_is_dropped_with_original_text():
    texts = {"a": f"{BOILER}\n\n{COOKIE}\n\nA's own paragraph.", "b": f"\n{BOILER}\n\n{COOKIE}\n",
             "c": f"{COOKIE}\n\nok"}
    got = _run(texts)
    assert got["b"] == (texts["b"], 2, len(texts["b"]), "duplicate_paragraphs")
    assert got["c"] == ("ok", 1, len(COOKIE) + 2, None)
    strict = _run(texts, min_doc_chars=3)
    assert strict["c"] == (texts["c"], 1, len(COOKIE) + 2, "duplicate_paragraphs")
    assert strict["a"] == (texts["a"], 0, 0, None)
    # a document with nothing removed is never dropped by this stage, however short
    assert _run({"a": "x", "b": "y"}, min_doc_chars=100) == {"a": ("x", 0, 0, None), "b": ("y", 0, 0, None)}


def test_untouched_documents_are_byte_identical():
    odd = "  Leading spaces,\ttabs\r\n\r\ntrailing  \n\n\n\u00e9\u4e2d\u0000 \n"
    texts = {"a": f"{BOILER}\n\nkeep me", "b": odd, "c": "", "d": None, "e": f"x\n\n{BOILER}\n\n"}
    got = _run(texts)
    for i in "abcd":
        assert got[i] == (texts[i], 0, 0, None)
    assert got["e"] == ("x\n\n", 1, len(BOILER) + 2, None)  # the trailing separator stays
    table = core_table({"id": list(texts), "text": list(texts.values())})
    out = dedup_table(table)
    assert out.column("text").to_pylist()[:4] == table.column("text").to_pylist()[:4]
    assert out.select(["id", "source", "url", "meta"]).equals(table.select(["id", "source", "url", "meta"]))


def test_line_mode_exact_output():
    texts = {"a": f"Title A\n{BOILER}\n{COOKIE}\nBody of A is here.\n",
             "b": f"Title B\n\n{COOKIE}\n\nBody of B is here.\n{BOILER}\n",
             "c": f"{BOILER}\n{BOILER}\nTitle C\n"}
    got = _run(texts, unit="line")
    assert got["a"] == (texts["a"], 0, 0, None)
    assert got["b"] == ("Title B\n\nBody of B is here.\n", 2, len(COOKIE) + len(BOILER) + 3, None)
    assert got["c"] == ("Title C\n", 2, 2 * len(BOILER) + 2, None)
    # paragraph mode: a and c are one paragraph each, b's COOKIE paragraph occurs nowhere else
    assert _run(texts) == {i: (t, 0, 0, None) for i, t in texts.items()}


def test_repeats_inside_one_document_are_left_alone():
    texts = {"a": f"{BOILER}\n\nA text.\n\n{BOILER}", "b": f"{COOKIE}\n\n{COOKIE}\n\nB text.",
             "c": f"{BOILER}\n\nC text.\n\n{BOILER}\n\n{BOILER}"}
    got = _run(texts)
    assert got["a"] == (texts["a"], 0, 0, None)  # the owner keeps all its copies
    assert got["b"] == (texts["b"], 0, 0, None)  # only in one document
    assert got["c"] == ("C text.", 3, len(texts["c"]) - len("C text."), None)


def test_keep_longest_and_score():
    texts = {"a": f"{BOILER}\n\nshort", "b": f"{BOILER}\n\na much longer text than a has", "c": f"c\n\n{BOILER}"}
    longest = _run(texts, keep="longest")
    assert [longest[i][1] for i in "abc"] == [1, 0, 1]
    table = core_table({"id": list(texts), "text": list(texts.values())}).append_column(
        "q", pa.array([0.2, None, 0.9]))
    scored = _rows(dedup_table(table, ParagraphDedupConfig(keep="score", score_column="q")))
    assert [scored[i][1] for i in "abc"] == [1, 1, 0]
    # ties go to the smallest id, nulls last
    tied = table.set_column(table.schema.get_field_index("q"), "q", pa.array([0.5, 0.5, None]))
    tied_rows = _rows(dedup_table(tied, ParagraphDedupConfig(keep="score", score_column="q")))
    assert [tied_rows[i][1] for i in "abc"] == [0, 1, 1]
    with pytest.raises(ValueError, match="score_column"):
        ParagraphDedupConfig(keep="score")
    with pytest.raises(ValueError, match="no column 'z'"):
        dedup_table(table, ParagraphDedupConfig(keep="score", score_column="z"))


def test_existing_drop_reason_and_columns_are_kept():
    table = core_table({"id": ["a", "b"], "text": [BOILER, BOILER]}).append_column(
        "drop_reason", pa.array([None, None], pa.string())).append_column("lang", pa.array(["en", "de"]))
    out = dedup_table(table)
    assert out.column("drop_reason").to_pylist() == [None, "duplicate_paragraphs"]
    assert out.column("lang").to_pylist() == ["en", "de"]
    assert out.column_names == ["id", "text", "source", "url", "meta", "drop_reason", "lang",
                                "para_dup_removed", "para_dup_chars_removed"]



def test_chunked_and_large_string_text():
    texts = {"a": f"{BOILER}\n\nA", "b": f"B\n\n{BOILER}", "c": f"{COOKIE}\n\nC", "d": f"{COOKIE}\n\nD"}
    expected = _run(texts)
    table = core_table({"id": list(texts), "text": list(texts.values())})
    chunked = pa.concat_tables([table.slice(0, 1), table.slice(1, 2), table.slice(3)])
    assert chunked.column("text").num_chunks == 3 and _rows(dedup_table(chunked)) == expected
    large = table.set_column(1, pa.field("text", pa.large_string()), table.column("text").cast(pa.large_string()))
    out = dedup_table(large)
    assert out.schema.field("text").type == pa.large_string() and _rows(out) == expected

# --- a plain-Python model of the rules, to compare against on generated corpora ---

_SEP = {"paragraph": re.compile(r"(\n(?:[ \t\r\f]*\n)+)"), "line": re.compile(r"(\n(?:[ \t\r\f]*\n)*)")}


def _reference(texts: dict[str, str], unit: str, min_unit_chars: int, min_docs: int) -> dict[str, tuple]:
    split = {i: _SEP[unit].split(t) for i, t in texts.items()}  # unit, sep, unit, ..., unit
    norm = {i: [" ".join(p.lower().split()) for p in parts[::2]] for i, parts in split.items()}
    holders: dict[str, set[str]] = {}
    for i, keys in norm.items():
        for k in keys:
            if len(k) >= min_unit_chars:
                holders.setdefault(k, set()).add(i)
    out = {}
    for i, parts in split.items():
        kept = [j for j, k in enumerate(norm[i])
                if not (k in holders and len(holders[k]) >= min_docs and min(holders[k]) != i)]
        new = "".join((parts[2 * j - 1] if n else "") + parts[2 * j] for n, j in enumerate(kept))
        removed = len(norm[i]) - len(kept)
        drop = "duplicate_paragraphs" if removed and not new.strip() else None
        out[i] = (texts[i] if drop or not removed else new, removed, len(texts[i]) - len(new) if removed else 0,
                  drop)
    return out


_PARAS = st.sampled_from([BOILER, COOKIE, "Cookie  policy and terms of use apply.", "cookie policy and terms "
                          "of use apply.", "Home", "Unique words of a story go here.", "Another line\nof text.",
                          "", "  "])
_SEPS = st.sampled_from(["\n", "\n\n", "\n \n", "\n\n\n", "\r\n\r\n", "\n\t\n\n"])


@st.composite
def _corpus(draw) -> dict[str, str]:
    n = draw(st.integers(1, 8))
    texts = {}
    for i in range(n):
        parts = draw(st.lists(_PARAS, min_size=1, max_size=5))
        seps = [draw(_SEPS) for _ in parts[1:]]
        texts[f"{i:02d}"] = parts[0] + "".join(s + p for s, p in zip(seps, parts[1:]))
    return texts


@settings(max_examples=150, deadline=None)
@given(_corpus(), st.sampled_from(["paragraph", "line"]), st.sampled_from([1, 20]), st.sampled_from([2, 3]),
       st.randoms(use_true_random=False))
def test_matches_reference_model_in_any_row_order(texts, unit, min_unit_chars, min_docs, rnd):
    cfg = {"unit": unit, "min_unit_chars": min_unit_chars, "min_docs": min_docs}
    expected = _reference(texts, **cfg)
    assert _run(texts, **cfg) == expected
    order = list(texts)
    rnd.shuffle(order)
    table = core_table({"id": order, "text": [texts[i] for i in order]})
    out = dedup_table(table, ParagraphDedupConfig(**cfg))
    assert out.column("id").to_pylist() == order and _rows(out) == expected
    kept = out.filter(out.column("drop_reason").is_null()).drop_columns(["drop_reason"])
    again = dedup_table(kept, ParagraphDedupConfig(**cfg))  # idempotent: nothing left to remove
    assert again.column("para_dup_removed").to_pylist() == [0] * kept.num_rows
    assert again.column("text").equals(kept.column("text"))


@pytest.mark.ray
def test_paragraph_dedup_on_ray_many_blocks(ray_cluster):
    import ray

    n = 240
    shared = [f"Shared paragraph number {k} that many pages carry along." for k in range(7)]
    texts = [f"Opening of page {i}.\n\n{shared[i % 7]}\n\n{shared[(i * 3) % 7]}\n\nOwn body {i} text."
             if i % 11 else shared[i % 7] for i in range(n)]
    ids = [f"{(i * 37) % n:04d}" for i in range(n)]  # ids not in row order
    table = core_table({"id": ids, "text": texts, "source": ["t"] * n})
    ds = ray.data.from_arrow([table.slice(i, 40) for i in range(0, n, 40)])
    assert ds.num_blocks() > 1
    expected = _rows(dedup_table(table))
    assert sum(v[1] for v in expected.values()) > n  # the data does exercise removal
    assert any(v[3] == "duplicate_paragraphs" for v in expected.values())
    out = ParagraphDedup(num_partitions=3).run(ds, seed=0)
    rows = pa.concat_tables(ray.get(out.to_arrow_refs()))
    assert rows.num_rows == n and _rows(rows) == expected
    again = ParagraphDedup(num_partitions=2).run(ds.repartition(5), seed=0)
    assert _rows(pa.concat_tables(ray.get(again.to_arrow_refs()))) == expected
