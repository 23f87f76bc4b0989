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


# ------------------------------------------------------------------------------------- speed settings
FAQ = ["basic-defs", "getting-debian", "choosing", "kernel", "support", "faqinfo"]


def _faq_pages(lang: str) -> list[str]:
    sub = "" if lang == "en" else f"{lang}/"
    return [_warc_page(f"/debian/FAQ/{sub}{name}.{lang}.html") for name in FAQ]


def _texts(stage, pages):
    out = stage(_table(pages))
    return out.column("text").to_pylist(), out.column("drop_reason").to_pylist()


def _token_f1(a: str, b: str) -> float:
    from collections import Counter

    ta, tb = Counter(a.split()), Counter(b.split())
    common = sum((ta & tb).values())
    return 0.0 if not common else 2 * common / (sum(ta.values()) + sum(tb.values()))


@pytest.mark.skipif(not WARC.exists(), reason="bundled WARC not present")
def test_strip_scripts_and_shared_options_leave_the_text_unchanged():
    import trafilatura

    pages = _faq_pages("en") + _faq_pages("de")[:2]
    script = "<script>var hidden = 'text in a script';</script><style>p { color: red }</style><!-- a note -->"
    pages.append(PAGE.replace("<body>", "<body>" + script * 50))
    default, _ = _texts(HtmlToText(fix_text=False), pages)  # strip_scripts is on by default
    unstripped, _ = _texts(HtmlToText(fix_text=False, strip_scripts=False), pages)
    direct = [trafilatura.extract(p, favor_precision=True, include_comments=False, include_tables=True,
                                  deduplicate=False) for p in pages]  # the library called as documented
    assert default == unstripped == direct
    assert "text in a script" not in default[-1] and "Ceci est un long paragraphe" in default[-1]


@pytest.mark.skipif(not WARC.exists(), reason="bundled WARC not present")
def test_fast_mode_on_the_bundled_warc():
    pages = _faq_pages("en")
    standard, _ = _texts(HtmlToText(), pages)
    fast, reasons = _texts(HtmlToText(fast=True), pages)
    kept = [(s, f) for s, f, r in zip(standard, fast, reasons, strict=True) if r is None]
    assert len(kept) >= 5  # fast mode may lose a page only its fallback extractors rescue ...
    assert all(_token_f1(s, f) >= 0.95 for s, f in kept)  # ... and keeps the others' text
    assert "the Debian C libraries are built with the most" in fast[FAQ.index("kernel")]


@pytest.mark.skipif(not WARC.exists(), reason="bundled WARC not present")
def test_cascade_drops_what_the_recipe_would_and_passes_the_rest_unchanged():
    en, de = _faq_pages("en"), _faq_pages("de")
    short = "<html><body><p>Only a few words here.</p></body></html>"
    pages = en + de + [short]
    standard, _ = _texts(HtmlToText(), pages)
    cascade, reasons = _texts(HtmlToText(cascade=True), pages)
    n = len(en)
    assert reasons[:n] == [None] * n and cascade[:n] == standard[:n]  # English pages: trafilatura's text
    assert reasons[n:2 * n] == ["cascade_lang"] * n  # German pages never reach trafilatura
    assert reasons[-1] == "cascade_short"
    assert cascade[n:] == pages[n:]  # a dropped page keeps its HTML for rejected/
    # the cascade's language rule can be widened, and its length rule switched off
    both, reasons = _texts(HtmlToText(cascade=True, cascade_languages=["en", "de"], cascade_min_words=None), pages)
    assert reasons == [None] * (2 * n + 1) and both == standard


def test_cascade_config():
    with pytest.raises(ValueError, match="trafilatura"):
        HtmlToText(extractor="resiliparse", cascade=True)
    assert {"cascade_lang", "cascade_short", "not_html"} <= set(HtmlToText.drop_reasons)
    out = HtmlToText(cascade=True, cascade_languages=None)(_table([PAGE]))  # length rule only
    assert out.column("drop_reason").to_pylist() == [None]
