import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from curator.schema import core_table
from curator.stages.normalize import Normalize

RAW = "  He said \u201chi\u201d \u2014 it\u2019s ok\u2026\r\n\r\n\r\n\r\nnext\u00a0\t line\u200b \x07end  "


def _run(texts, **params):
    table = core_table({"id": [str(i) for i in range(len(texts))], "text": texts})
    return Normalize(**params)(table).column("text").to_pylist()


def test_defaults():
    assert _run([RAW]) == ["He said \"hi\" - it's ok...\n\nnext line end"]


def test_every_change_switchable():
    off = dict(nfc=False, remove_control=False, quotes="keep", dashes="keep", ellipsis=False)
    off["whitespace"] = False
    assert _run([RAW], **off) == [RAW]
    assert _run(["a\u2014b"], dashes="keep") == ["a\u2014b"]
    assert _run(["\u201cq\u201d"], quotes="keep") == ["\u201cq\u201d"]
    assert _run(["x\u2026"], ellipsis=False) == ["x\u2026"]


def test_nfc():
    assert _run(["e\u0301"]) == ["\u00e9"]
    assert _run(["e\u0301"], nfc=False) == ["e\u0301"]


def test_emoji_symbols_markup():
    emoji = "\U0001f600\U0001f44d\U0001f3fd \U0001f1eb\U0001f1f7"
    text = f"ok {emoji} \u00a9 \u2122 <b>bold</b> &amp; <!-- c --> end"
    assert _run([text], remove_emoji=True, remove_markup=True) == ["ok \u00a9 \u2122 bold & end"]
    assert _run([text], remove_symbols=True) == ["ok <b>bold</b> &amp; <!-- c --> end"]


def test_rtl_and_joiners_kept():
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u200f\u05e9\u05dc\u05d5\u05dd"
    assert _run([persian]) == [persian]


def test_null_and_empty():
    assert _run([None, "", "   \n\n  "]) == [None, "", ""]


@given(st.text())
def test_deterministic_and_idempotent(text):
    once = _run([text])[0]
    assert _run([text]) == [once]
    assert _run([once]) == [once]
    assert "\r" not in once and "  " not in once


def test_bad_input():
    big, garbage = "x" * 50_000_000, bytes(range(256)).decode("latin-1") * 100
    out_big, out_garbage = _run([big, garbage])
    assert out_big == big
    printable = "".join(map(chr, range(0x21, 0x7F)))
    assert out_garbage.count(printable) == 100  # the printable ASCII survives, in order, every time
    assert not [c for c in out_garbage if unicodedata.category(c) == "Cc" and c != "\n"]
    assert "  " not in out_garbage and "\xad" not in out_garbage and "\xa0" not in out_garbage
