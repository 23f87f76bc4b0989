import json
from pathlib import Path

import pytest

from curator.schema import core_table
from curator.stages.extract import HtmlToText, head_fields, merge_meta

WARC = Path(__file__).resolve().parents[2] / "examples" / "data" / "sample.warc.gz"
PAGE = """<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">
<meta http-equiv="Content-Language" content="fr-CA"><title>Le  titre &amp; plus</title></head>
<body><nav><a href="/">Accueil</a> | <a href="/a">Archives</a></nav>
<article><h1>Un article</h1><p>Ceci est un long paragraphe de texte qui raconte une histoire assez
longue pour que l'extracteur le garde comme contenu principal de la page, avec des d\u00e9tails.</p>
<p>Un deuxi\u00e8me paragraphe ajoute encore du texte, pour que la page ressemble \u00e0 un vrai
article de blog que quelqu'un aurait envie de lire jusqu'au bout.</p></article>
<footer>Copyright 2024</footer></body></html>"""


def _table(pages, metas=None):
    n = len(pages)
    return core_table({"id": [str(i) for i in range(n)], "text": pages, "meta": metas or ['{"k": 1}'] * n})


def test_head_fields_and_meta_merge():
    assert head_fields(PAGE) == {"title": "Le titre & plus", "html_lang": "fr", "content_language": "fr-CA"}
    assert json.loads(merge_meta('{"k": 1}', {"title": "t"})) == {"k": 1, "title": "t"}
    assert json.loads(merge_meta("[1]", {"title": "t"})) == {"source_meta": [1], "title": "t"}
    assert merge_meta(None, {}) is None


@pytest.mark.parametrize("extractor", ["trafilatura", "resiliparse"])
def test_crafted_page(extractor):
    out = HtmlToText(extractor=extractor)(_table([PAGE]))
    text = out.column("text").to_pylist()[0]
    assert "Ceci est un long paragraphe" in text and "deuxi\u00e8me paragraphe" in text
    assert "Accueil" not in text  # navigation removed
    assert json.loads(out.column("meta").to_pylist()[0])["title"] == "Le titre & plus"
    assert out.column("drop_reason").to_pylist() == [None]


def _warc_page(suffix):
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    with open(WARC, "rb") as f:
        for rec in ArchiveIterator(f, record_types=WarcRecordType.response):
            if rec.headers.get("WARC-Target-URI", "").rstrip(">").endswith(suffix):
                return rec.reader.read().decode("utf-8", "replace")
    raise AssertionError(f"{suffix} not in {WARC}")


@pytest.mark.skipif(not WARC.exists(), reason="bundled WARC not present")
def test_real_page_from_bundled_warc():
    page = _warc_page("/debian/FAQ/kernel.en.html")
    out = HtmlToText()(_table([page]))
    text = out.column("text").to_pylist()[0]
    assert "the Debian C libraries are built with the most" in text
    assert "Keeping your Debian system up-to-date" not in text  # the page's prev/next navigation
    assert json.loads(out.column("meta").to_pylist()[0])["title"] == "Chapter 10. Debian and the kernel"
    png = _warc_page("/debian/FAQ/images/next.png")
    assert HtmlToText()(_table([png])).column("drop_reason").to_pylist() == ["not_html"]


def test_mojibake_repaired_quotes_kept():
    page = "<html><body><article><p>" + "The caf\u00c3\u00a9 said \u201chello\u201d to everyone in town. " * 8
    page += "</p></article></body></html>"
    text = HtmlToText(extractor="resiliparse")(_table([page])).column("text").to_pylist()[0]
    assert "caf\u00e9" in text and "\u00c3" not in text and "\u201chello\u201d" in text
    raw = HtmlToText(extractor="resiliparse", fix_text=False)(_table([page])).column("text").to_pylist()[0]
    assert "caf\u00c3\u00a9" in raw


def test_bad_input():
    huge = "<html><body><p>" + "word " * 12_000_000 + "</p></body></html>"  # 60 MB: capped
    garbage = bytes(range(256)).decode("latin-1") * 20
    rtl = "<html dir='rtl' lang='he'><body><p>" + "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd. " * 50
    pages = ["", None, garbage, "<html><body></body></html>", rtl + "</p></body></html>", huge]
    out = HtmlToText(extractor="resiliparse", max_html_chars=200_000)(_table(pages))
    reasons = out.column("drop_reason").to_pylist()
    assert reasons[:4] == ["empty_extraction", "empty_extraction", "not_html", "empty_extraction"]
    assert reasons[4] is None and json.loads(out.column("meta").to_pylist()[4])["html_lang"] == "he"
    assert reasons[5] is None and len(out.column("text").to_pylist()[5]) <= 200_000
