"""trainer.tokenizer: byte-level BPE round trips, the boundary token, save/load, hashes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.tokenizer import EOT, eot_id, file_hash, load_tokenizer, train_tokenizer


def test_round_trip_and_special_token(tokenizer_path, paragraphs):
    tok = load_tokenizer(tokenizer_path)
    assert tok.get_vocab_size() == 400
    assert eot_id(tok) == 0
    for text in paragraphs[:20] + ["naïve café — 東京 \t\n  x", ""]:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids) == text
    # the boundary token is one id, never split, and learned merges shorten common text
    assert tok.encode(EOT, add_special_tokens=False).ids == [0]
    n_tok = sum(len(tok.encode(p).ids) for p in paragraphs[:50])
    assert n_tok < 0.6 * sum(len(p.encode()) for p in paragraphs[:50])


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=80))
def test_any_unicode_text_round_trips(tokenizer_path, text):
    tok = load_tokenizer(tokenizer_path)
    assert tok.decode(tok.encode(text, add_special_tokens=False).ids) == text


def test_training_is_deterministic_and_hash_tracks_content(tmp_path, paragraphs):
    a = train_tokenizer(paragraphs[:100], 300, tmp_path / "a.json")
    b = train_tokenizer(paragraphs[:100], 300, tmp_path / "b.json")
    assert file_hash(tmp_path / "a.json") == file_hash(tmp_path / "b.json")
    assert a.encode(paragraphs[5]).ids == b.encode(paragraphs[5]).ids
    train_tokenizer(paragraphs[100:200], 300, tmp_path / "c.json")
    assert file_hash(tmp_path / "c.json") != file_hash(tmp_path / "a.json")


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="smaller than"):
        train_tokenizer(["x"], 100, tmp_path / "t.json")
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path / "missing.json")
