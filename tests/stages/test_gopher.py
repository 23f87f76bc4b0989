from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.schema import core_table
from curator.stages.gopher import (
    GopherQuality,
    GopherRepetition,
    duplicate_ngram_chars,
    top_ngram_chars,
)
from curator.stages.text_utils import tokenize

# Tokens: the cat sat with the dog . | - a list line ... | # tag and more   (16 tokens, 12 words)
TEXT = "the cat sat with the dog.\n- a list line...\n#tag and more"
OFF = dict(
    min_doc_words=None, max_doc_words=None, min_avg_word_length=None, max_avg_word_length=None,
    max_symbol_word_ratio=None, max_bullet_lines_ratio=None, max_ellipsis_lines_ratio=None,
    min_alpha_words_ratio=None, min_stop_words=None,
)


def _table(*texts):
    return core_table({"id": [str(i) for i in range(len(texts))], "text": list(texts)})


def _col(t, name):
    return t.column(name).to_pylist()[0]


def test_quality_signals_by_hand():
    t = GopherQuality()(_table(TEXT))
    assert _col(t, "quality_gopher_word_count") == 12
    assert _col(t, "quality_gopher_mean_word_length") == pytest.approx(38 / 12)
    assert _col(t, "quality_gopher_hash_ratio") == pytest.approx(1 / 16)
    assert _col(t, "quality_gopher_ellipsis_ratio") == pytest.approx(1 / 16)
    assert _col(t, "quality_gopher_bullet_lines_ratio") == pytest.approx(1 / 3)
    assert _col(t, "quality_gopher_ellipsis_lines_ratio") == pytest.approx(1 / 3)
    assert _col(t, "quality_gopher_alpha_words_ratio") == pytest.approx(12 / 16)
    assert _col(t, "quality_gopher_stop_words") == 3  # the, with, and
    assert _col(t, "drop_reason") == "gopher_short_doc"


@pytest.mark.parametrize(
    "params, text, reason",
    [
        ({"min_doc_words": 50}, TEXT, "gopher_short_doc"),
        ({"max_doc_words": 10}, TEXT, "gopher_long_doc"),
        ({"min_avg_word_length": 3.5}, TEXT, "gopher_short_words"),
        ({"max_avg_word_length": 3.0}, TEXT, "gopher_long_words"),
        ({"max_symbol_word_ratio": 0.05}, TEXT, "gopher_too_many_hashes"),
        ({"max_symbol_word_ratio": 0.1}, "wait... what", "gopher_too_many_ellipsis"),
        ({"max_bullet_lines_ratio": 0.3}, TEXT, "gopher_too_many_bullets"),
        ({"max_ellipsis_lines_ratio": 0.3}, TEXT, "gopher_too_many_end_ellipsis"),
        ({"min_alpha_words_ratio": 0.8}, TEXT, "gopher_few_alpha_words"),
        ({"min_stop_words": 4}, TEXT, "gopher_few_stop_words"),
    ],
)
def test_quality_each_reason(params, text, reason):
    t = GopherQuality(**{**OFF, **params})(_table(text))
    assert t.column("drop_reason").to_pylist() == [reason]


def test_quality_all_rules_off_keeps_everything():
    t = GopherQuality(**OFF)(_table(TEXT, "", "\x00\x01 \u202b\u05e9\u05dc\u05d5\u05dd"))
    assert t.column("drop_reason").to_pylist() == [None, None, None]


REP = "a b c\n\na b c\n\nd e f"  # 19 characters


def test_repetition_signals_by_hand():
    t = GopherRepetition()(_table(REP))
    assert _col(t, "quality_gopher_dup_para_frac") == pytest.approx(1 / 3)
    assert _col(t, "quality_gopher_dup_para_char_frac") == pytest.approx(5 / 19)
    assert _col(t, "quality_gopher_dup_line_frac") == pytest.approx(1 / 3)
    assert _col(t, "quality_gopher_dup_line_char_frac") == pytest.approx(5 / 19)
    assert _col(t, "quality_gopher_top_2gram_frac") == pytest.approx(2 * 3 / 19)  # "a b" twice
    assert _col(t, "quality_gopher_top_3gram_frac") == pytest.approx(2 * 5 / 19)  # "a b c" twice
    assert _col(t, "quality_gopher_top_4gram_frac") == pytest.approx(7 / 19)  # first 4-gram, once
    for n in range(5, 11):
        assert _col(t, f"quality_gopher_dup_{n}gram_frac") == 0.0
    assert _col(t, "drop_reason") == "gopher_dup_para"


def test_duplicate_5gram_by_hand():
    t = GopherRepetition()(_table("a b c d e a b c d e f"))
    assert _col(t, "quality_gopher_dup_5gram_frac") == pytest.approx(5 / 21)
    assert _col(t, "quality_gopher_dup_6gram_frac") == 0.0


REP_OFF = dict(
    max_dup_para_frac=None, max_dup_para_char_frac=None, max_dup_line_frac=None,
    max_dup_line_char_frac=None, max_top_ngram_char_frac={}, max_dup_ngram_char_frac={},
)


@pytest.mark.parametrize(
    "params, reason",
    [
        ({"max_dup_para_frac": 0.3}, "gopher_dup_para"),
        ({"max_dup_para_char_frac": 0.2}, "gopher_dup_para_chars"),
        ({"max_dup_line_frac": 0.3}, "gopher_dup_line"),
        ({"max_dup_line_char_frac": 0.2}, "gopher_dup_line_chars"),
        ({"max_top_ngram_char_frac": {2: 0.2}}, "gopher_top_2gram"),
        ({"max_top_ngram_char_frac": {3: 0.18}}, "gopher_top_3gram"),
        ({"max_top_ngram_char_frac": {4: 0.16}}, "gopher_top_4gram"),
    ],
)
def test_repetition_line_and_top_reasons(params, reason):
    t = GopherRepetition(**{**REP_OFF, **params})(_table(REP, " ".join(f"w{i}" for i in range(100))))
    assert t.column("drop_reason").to_pylist() == [reason, None]


@pytest.mark.parametrize("n", range(5, 11))
def test_repetition_duplicate_ngram_reasons(n):
    words = " ".join("abcdefghij"[:n])
    text = f"{words} {words}"  # the n-gram repeats once: n of 4n-1 characters
    t = GopherRepetition(**{**REP_OFF, "max_dup_ngram_char_frac": {n: 0.15}})(_table(text))
    assert _col(t, f"quality_gopher_dup_{n}gram_frac") == pytest.approx(n / (4 * n - 1))
    assert _col(t, "drop_reason") == f"gopher_dup_{n}gram"


def test_repetition_empty_text():
    t = GopherRepetition()(_table("", None))
    assert t.column("drop_reason").to_pylist() == ["gopher_empty", "gopher_empty"]


def _reference_dup(words, n):
    """The rule as written: scan n-grams as strings, jump past a repeat."""
    seen, idx, chars = set(), 0, 0
    while idx < len(words) - n + 1:
        gram = "".join(words[idx : idx + n])
        if tuple(words[idx : idx + n]) in seen:
            chars += len(gram)
            idx += n
        else:
            seen.add(tuple(words[idx : idx + n]))
            idx += 1
    return chars


def _reference_top(words, n):
    grams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0
    gram, count = Counter(grams).most_common(1)[0]
    return len(gram) * count


def _ids(words):
    vocab = {}
    ids = np.array([vocab.setdefault(w, len(vocab)) for w in words], dtype=np.uint64)
    ids = (ids + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    cum = np.concatenate([[0], np.cumsum([len(w) for w in words])]).astype(np.int64)
    return ids, cum


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "bb", "ccc", "d"]), max_size=60), st.integers(2, 10))
def test_ngram_signals_match_reference(words, n):
    ids, cum = _ids(words)
    assert duplicate_ngram_chars(ids, cum, n) == _reference_dup(words, n)
    assert top_ngram_chars(ids, cum, n) == _reference_top(words, n)


def test_bad_input_no_crash_and_a_decision():
    big = ("word " * 10_000_000)[:50_000_000]  # 50 MB: only max_inspect_chars are looked at
    garbage = bytes(range(256)).decode("latin-1") * 10
    mixed = "English text, русский текст, 中文文本, عربي النص. " * 20
    rtl = "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd. " * 40
    table = _table("", big, garbage, mixed, rtl)
    reasons = {}
    for stage in (GopherQuality(), GopherRepetition()):
        out = stage(table)
        assert out.num_rows == 5
        reasons[stage.name] = out.column("drop_reason").to_pylist()
    # empty; 10M words (> max_doc_words); symbols; "," and "." tokens put the alpha-word share below 0.8
    assert reasons["gopher_quality"] == ["gopher_short_doc", "gopher_long_doc", "gopher_few_alpha_words",
                                         "gopher_few_alpha_words", "gopher_few_alpha_words"]
    # empty; "word word" is every 2-gram; the garbage block's lines repeat 10 times; one line repeated
    assert reasons["gopher_repetition"] == ["gopher_empty", "gopher_top_2gram", "gopher_dup_line",
                                            "gopher_top_2gram", "gopher_top_2gram"]


def test_tokenizer_examples():
    assert tokenize('He said "don\'t", e.g. at https://x.org/a. (well-known) 3.14 $5') == [
        "He", "said", '"', "do", "n't", '"', ",", "e.g.", "at", "https://x.org/a", ".",
        "(", "well", "-", "known", ")", "3.14", "$", "5",
    ]
    assert tokenize("Im sure foo_1.0-1.deb): works :-)") == [
        "I", "m", "sure", "foo_1.0-1.deb", "):", "works", ":-)",
    ]
