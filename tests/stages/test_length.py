import pyarrow as pa
import pytest
from pydantic import ValidationError

from curator.schema import core_table
from curator.stages.length import MinLength


def _table(texts):
    return core_table({"id": [str(i) for i in range(len(texts))], "text": texts})


def test_char_counts_and_too_short():
    t = MinLength(min_chars=5)(_table(["abcd", "abcde", "héllo wörld", "", None]))
    assert t.column("quality_char_count").to_pylist() == [4, 5, 11, 0, 0]
    assert t.column("drop_reason").to_pylist() == ["too_short", None, None, "too_short", "too_short"]


def test_min_words():
    t = MinLength(min_chars=0, min_words=3)(_table(["one two", "one  two\tthree", " a b c d "]))
    assert t.column("quality_word_count").to_pylist() == [2, 3, 4]
    assert t.column("drop_reason").to_pylist() == ["too_short", None, None]


def test_too_long():
    t = MinLength(min_chars=2, max_chars=4)(_table(["a", "abcd", "abcde"]))
    assert t.column("drop_reason").to_pylist() == ["too_short", None, "too_long"]


def test_keeps_earlier_reason_and_columns():
    t = _table(["x", "long enough"]).append_column("drop_reason", pa.array(["earlier", None]))
    out = MinLength(min_chars=3)(t)
    assert out.column("drop_reason").to_pylist() == ["earlier", None]
    assert out.column_names[:5] == ["id", "text", "source", "url", "meta"]


def test_unknown_parameter_is_an_error():
    with pytest.raises(ValidationError):
        MinLength(min_char=3)
