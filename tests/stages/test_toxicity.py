"""toxicity: flagged-word ratios computed by hand, per-language lists, phrases, classifier path, bad input."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curator.stages.fasttext_model import save_model, train_supervised
from curator.stages.toxicity import DEFAULT_LISTS, Toxicity, load_word_list


def table(texts, langs=None):
    cols = {"text": pa.array(texts, pa.string())}
    if langs is not None:
        cols["lang"] = pa.array(langs, pa.string())
    return pa.table(cols)


@pytest.fixture
def user_list(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# my list\nzonk\nBlarg  Fest\nkrull-wix\n\n")
    return path


def test_ratio_by_hand_single_words_and_phrases(user_list):
    stage = Toxicity(default_lists=False, word_lists={"*": str(user_list)}, max_word_ratio=0.2)
    texts = [
        "zonk the zonk",                      # 2 of 3 words
        "a blarg fest today, and blarg alone",  # phrase covers 2 of 7 words; lone "blarg" is no entry
        "Krull wix! krull-wix.",                # both spellings split to "krull wix": 4 of 4
        "nothing to see here",                 # 0 of 4
        "ZONK",                                # case-insensitive: 1 of 1
        "zonkers zonk2",                       # whole words only: 0 of 2
    ]
    out = stage(table(texts))
    assert out.column("toxicity_word_ratio").to_pylist() == pytest.approx([2 / 3, 2 / 7, 1.0, 0.0, 1.0, 0.0])
    assert out.column("drop_reason").to_pylist() == ["toxic_words", "toxic_words", "toxic_words", None,
                                                     "toxic_words", None]


def test_phrase_does_not_span_documents(user_list):
    stage = Toxicity(default_lists=False, word_lists={"*": str(user_list)})
    out = stage(table(["end of blarg", "fest begins"]))
    assert out.column("toxicity_word_ratio").to_pylist() == [0.0, 0.0]


def test_language_selects_the_list(tmp_path):
    (tmp_path / "en.txt").write_text("darn\n")
    (tmp_path / "de.txt").write_text("mist\n")
    stage = Toxicity(default_lists=False, word_lists={"en": str(tmp_path / "en.txt"),
                                                      "de": str(tmp_path / "de.txt")})
    texts = ["darn mist", "darn mist", "darn mist", "darn mist"]
    out = stage(table(texts, ["en", "de", "fr", None]))
    # en: only "darn"; de: only "mist"; fr (no list) and unknown: the union of all lists
    assert out.column("toxicity_word_ratio").to_pylist() == [0.5, 0.5, 1.0, 1.0]
    # without a lang column every document is checked against the union
    assert Toxicity(default_lists=False, word_lists={"en": str(tmp_path / "en.txt")})(
        table(["darn it"])).column("toxicity_word_ratio").to_pylist() == [0.5]


def test_default_lists_are_bundled_with_source_and_license():
    readme = (DEFAULT_LISTS / "README.md").read_text()
    assert "CC BY 4.0" in readme and "LDNOOBW" in readme
    assert (DEFAULT_LISTS / "LICENSE-CC-BY-4.0.txt").is_file()
    en = load_word_list(DEFAULT_LISTS / "en.txt")
    assert "bastard" in en and "2 girls 1 cup" in en
    stage = Toxicity()
    assert {"en", "de", "fr", "es", "ru"} <= stage.lists.keys()
    out = stage(table(["You are a bastard", "What a lovely garden"], ["en", "en"]))
    assert out.column("toxicity_word_ratio").to_pylist() == [0.25, 0.0]
    assert out.column("drop_reason").to_pylist() == ["toxic_words", None]


def test_threshold_none_keeps_everything(user_list):
    stage = Toxicity(default_lists=False, word_lists={"*": str(user_list)}, max_word_ratio=None)
    out = stage(table(["zonk zonk"]))
    assert out.column("toxicity_word_ratio").to_pylist() == [1.0]
    assert out.column("drop_reason").to_pylist() == [None]


def test_classifier_path_scores_and_drops(tmp_path):
    toxic = [f"you worthless idiot number {i} I hate you" for i in range(200)]
    clean = [f"the garden has {i} roses and a quiet pond" for i in range(200)]
    model = train_supervised(toxic + clean, ["toxic"] * 200 + ["clean"] * 200, dim=8, bucket=5000, seed=0)
    path = save_model(model, tmp_path / "tox.bin")
    stage = Toxicity(default_lists=False, model_path=str(path), classifier_threshold=0.5)
    out = stage(table(["I hate you, worthless idiot", "roses by the quiet pond", ""]))
    score = out.column("toxicity_score").to_pylist()
    assert score[0] > 0.5 > score[1] and score[2] == 0.0
    assert out.column("drop_reason").to_pylist() == ["toxic_classifier", None, None]


def test_word_reason_wins_over_classifier(tmp_path, user_list):
    model = train_supervised(["zonk"] * 20 + ["calm"] * 20, ["toxic"] * 20 + ["clean"] * 20, dim=4,
                             bucket=100, seed=0)
    path = save_model(model, tmp_path / "m.bin")
    stage = Toxicity(default_lists=False, word_lists={"*": str(user_list)}, model_path=str(path))
    assert stage(table(["zonk"])).column("drop_reason").to_pylist() == ["toxic_words"]


def test_bad_input_no_crash():
    stage = Toxicity()
    garbage = bytes(range(1, 256)).decode("latin-1")
    texts = ["", None, garbage, "שלום עולם", "bastard 日本語 مرحبا mixed", "\x00" * 10,
             "bastard " * (5 * 1024 * 1024)]  # 40 MB: only max_chars are inspected
    out = stage(table(texts))
    ratios = out.column("toxicity_word_ratio").to_pylist()
    assert ratios[:2] == [0.0, 0.0] and ratios[5] == 0.0
    assert ratios[4] == pytest.approx(1 / 4)
    assert ratios[6] == 1.0
    assert out.num_rows == len(texts)


def test_empty_table():
    out = Toxicity()(table([]))
    assert out.num_rows == 0 and "toxicity_word_ratio" in out.column_names


def test_a_word_list_with_a_byte_order_mark_keeps_its_first_term(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufefffirstterm\nsecondterm\n".encode())
    assert load_word_list(path) >= {"firstterm", "secondterm"}
