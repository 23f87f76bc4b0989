import pytest

from curator.schema import core_table
from curator.stages.c4 import C4Quality

DOC = "\n".join([
    "This is a good line. It has two sentences!",  # kept, 2 sentences
    "Enable JavaScript to view this page.",  # javascript
    "short line.",  # 2 words
    "No terminal punctuation here",  # no terminal punctuation
    "We use cookies to improve things.",  # policy notice
    "Another fine sentence here.",  # kept, 1
    "Trailing ellipsis is bad...",  # ends with an ellipsis
    "Citation marks vanish[1] from this line.",  # kept without [1], 1
    "Final words of the page. Really final.",  # kept, 2
])
KEPT = "\n".join([
    "This is a good line. It has two sentences!",
    "Another fine sentence here.",
    "Citation marks vanish from this line.",
    "Final words of the page. Really final.",
])


def _table(*texts):
    return core_table({"id": [str(i) for i in range(len(texts))], "text": list(texts)})


def test_line_cleaning_by_hand():
    t = C4Quality()(_table(DOC))
    assert t.column("text").to_pylist() == [KEPT]
    assert t.column("quality_c4_lines").to_pylist() == [9]
    assert t.column("quality_c4_removed_lines").to_pylist() == [5]
    assert t.column("quality_c4_sentences").to_pylist() == [6]
    assert t.column("drop_reason").to_pylist() == [None]


def test_switches_keep_lines():
    t = C4Quality(filter_javascript=False, filter_policy=False, remove_citations=False)(_table(DOC))
    text = t.column("text").to_pylist()[0]
    assert "Enable JavaScript to view this page." in text
    assert "We use cookies to improve things." in text
    assert "vanish[1]" in text


@pytest.mark.parametrize(
    "extra, reason",
    [
        ("Lorem ipsum dolor sit amet.", "c4_lorem_ipsum"),
        ("Use the {brace} syntax here.", "c4_curly_bracket"),
    ],
)
def test_document_reasons(extra, reason):
    t = C4Quality()(_table(DOC + "\n" + extra))
    assert t.column("drop_reason").to_pylist() == [reason]
    assert t.column("text").to_pylist() == [DOC + "\n" + extra]  # a dropped document keeps its text


def test_too_few_sentences():
    text = "One good sentence here.\nAnd another one here.\nmenu\nhome"
    t = C4Quality()(_table(text))
    assert t.column("quality_c4_sentences").to_pylist() == [2]
    assert t.column("drop_reason").to_pylist() == ["c4_too_few_sentences"]
    assert C4Quality(min_num_sentences=2)(_table(text)).column("drop_reason").to_pylist() == [None]


def test_bad_input():
    big = "A sentence that ends well.\n" * 2_000_000  # 54 MB: only the inspected prefix is cleaned
    garbage = bytes(range(256)).decode("latin-1") * 10
    rtl = "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd \u05d6\u05d4 \u05d8\u05e7\u05e1\u05d8. " * 10
    t = C4Quality(max_inspect_chars=10_000)(_table("", None, big, garbage, rtl))
    assert t.column("drop_reason").to_pylist() == [
        "c4_too_few_sentences", "c4_too_few_sentences", None, "c4_too_few_sentences", None,
    ]
    assert len(t.column("text").to_pylist()[2]) <= 10_000
