import pytest

from curator.schema import core_table
from curator.stages.fineweb import FineWebQuality

# 4 non-blank lines; 2 end in punctuation; 3 have <= 30 chars; "short" repeats (5 of 67 chars)
TEXT = "This line ends well.\nshort\nAnother line that ends with a period.\nshort\n"
OFF = dict(line_punct_thr=None, short_line_thr=None, char_duplicates_ratio=None, new_line_ratio=None)


def _table(*texts):
    return core_table({"id": [str(i) for i in range(len(texts))], "text": list(texts)})


def test_signals_by_hand():
    t = FineWebQuality()(_table(TEXT))
    row = {c: t.column(c).to_pylist()[0] for c in t.column_names}
    assert row["quality_fineweb_line_punct_ratio"] == pytest.approx(2 / 4)
    assert row["quality_fineweb_short_line_ratio"] == pytest.approx(3 / 4)
    assert row["quality_fineweb_char_dup_ratio"] == pytest.approx(5 / 67)
    assert row["quality_fineweb_newline_ratio"] == pytest.approx(4 / 15)  # 15 tokens
    assert row["drop_reason"] == "fineweb_short_line_ratio"


@pytest.mark.parametrize(
    "params, text, reason",
    [
        ({"line_punct_thr": 0.12}, "no punctuation here\nnone here either", "fineweb_line_punct_ratio"),
        ({"short_line_thr": 0.67}, TEXT, "fineweb_short_line_ratio"),
        ({"char_duplicates_ratio": 0.01}, TEXT, "fineweb_char_dup_ratio"),
        ({"new_line_ratio": 0.3}, "a.\nb.\nc.", "fineweb_list_ratio"),
        ({}, "\n \n", "fineweb_empty"),
    ],
)
def test_each_reason(params, text, reason):
    t = FineWebQuality(**{**OFF, **params})(_table(text))
    assert t.column("drop_reason").to_pylist() == [reason]


def test_exclude_zero_punct():
    text = "no punctuation here\nnone here either"
    t = FineWebQuality(**{**OFF, "line_punct_thr": 0.12, "line_punct_exclude_zero": True})(_table(text))
    assert t.column("drop_reason").to_pylist() == [None]


def test_good_document_kept_and_bad_input():
    good = "\n".join(f"Sentence number {i} is long enough to count as a line." for i in range(20))
    big = "x" * 50_000_000
    garbage = bytes(range(256)).decode("latin-1") * 10
    hebrew = "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd \u05d6\u05d4 \u05d8\u05e7\u05e1\u05d8"
    rtl = "\n".join(f"{hebrew} {hebrew} {i}." for i in range(10))
    reasons = FineWebQuality()(_table(good, "", None, big, garbage, rtl)).column("drop_reason").to_pylist()
    assert reasons[:3] == [None, "fineweb_empty", "fineweb_empty"]
    assert reasons[3] == "fineweb_line_punct_ratio" and reasons[5] is None
    assert reasons[4] == "fineweb_line_punct_ratio"  # the garbage's lines end in symbols, not punctuation
