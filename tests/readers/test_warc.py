"""WARC reader: the bundled crawl (counts checked against warcio directly), charsets, bad input."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from warcio.archiveiterator import ArchiveIterator

from curator.readers import read_file
from curator.readers.base import ReadStats
from curator.readers.warc import decode_html, parse_content_type, read_warc, sniff_meta_charset
from curator.schema import CORE_SCHEMA, make_id

REPO = Path(__file__).resolve().parents[2]
SAMPLE = str(REPO / "examples/data/sample.warc.gz")
BAD = REPO / "tests/data/bad"


def _rows(path, **kw) -> tuple[list[dict], ReadStats]:
    stats = ReadStats(path=str(path))
    tables = list(read_file(str(path), stats=stats, **kw))
    for t in tables:
        assert t.schema == CORE_SCHEMA
    return [r for t in tables for r in t.to_pylist()], stats


def _warcio_census(path: str) -> tuple[list[tuple[str, str]], Counter]:
    """(record id, url) of every 200 text/html response, and the other responses by kind, by warcio."""
    html, other = [], Counter()
    with open(path, "rb") as f:
        for rec in ArchiveIterator(f):
            if rec.rec_type != "response":
                continue
            status = rec.http_headers.get_statuscode()
            mime = (rec.http_headers.get_header("Content-Type") or "").split(";")[0].strip()
            if status != "200":
                other["http_status"] += 1
            elif mime in ("text/html", "application/xhtml+xml"):
                html.append((rec.rec_headers.get_header("WARC-Record-ID"),
                             rec.rec_headers.get_header("WARC-Target-URI")))
            else:
                other["non_html"] += 1
    return html, other


@pytest.fixture(scope="module")
def sample():
    return _rows(SAMPLE)


def test_sample_counts_match_an_independent_warcio_census(sample):
    rows, stats = sample
    html, other = _warcio_census(SAMPLE)
    assert len(rows) == len(html) == 256
    assert stats.records == 256
    assert dict(stats.skipped) == dict(other) == {"non_html": 81, "http_status": 11}
    assert [(json.loads(r["meta"])["warc_record_id"], r["url"]) for r in rows] == html


def test_sample_ids_are_unique_stable_and_derived_from_the_record_id(sample):
    rows, _ = sample
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids)
    assert ids == [r["id"] for r in _rows(SAMPLE)[0]]
    for r in rows:
        assert r["id"] == make_id("warc", json.loads(r["meta"])["warc_record_id"])


def test_sample_text_is_the_decoded_html_in_many_languages(sample):
    rows, _ = sample
    langs = Counter(r["url"].rsplit(".", 2)[-2] for r in rows if r["url"].endswith(".html"))
    assert {"en", "de", "fr", "it", "ja", "nl", "pt", "ru", "zh-cn", "es", "vi"} <= set(langs)
    by_url = {r["url"]: r for r in rows}
    ja = next(r for u, r in by_url.items() if u.endswith("index.ja.html") and "FAQ" in u)
    assert "Debian GNU/Linux FAQ" in ja["text"] and any("\u3040" <= c <= "\u30ff" for c in ja["text"])
    ru = next(r for u, r in by_url.items() if u.endswith("index.ru.html") and "FAQ" in u)
    assert any("\u0400" <= c <= "\u04ff" for c in ru["text"])
    for r in rows:
        assert r["text"].lstrip().lower().startswith(("<?xml", "<!doctype", "<html"))
        assert r["source"] == "warc" and not r["url"].startswith("<")
        meta = json.loads(r["meta"])
        assert meta["http_status"] == 200 and meta["content_type"] == "text/html"
        assert meta["charset"] == "utf-8" and meta["encoding_detected"] is False
    # pages declare utf-8 in <meta>; the three directory listings in the HTTP header
    assert Counter(json.loads(r["meta"])["charset_source"] for r in rows) == {"meta": 253, "http": 3}


def test_backends_agree_on_the_sample(sample):
    rows, stats = sample
    rows_w, stats_w = _rows(SAMPLE, backend="warcio")
    assert rows_w == rows
    assert stats_w.skipped == stats.skipped


def test_batches_hold_batch_size_rows_and_source_is_settable():
    sizes = [t.num_rows for t in read_warc(SAMPLE, batch_size=100, source="commoncrawl")]
    assert sizes == [100, 100, 56]
    t = next(read_warc(SAMPLE, batch_size=5, source="commoncrawl"))
    assert t.column("source").to_pylist() == ["commoncrawl"] * 5


def test_charsets_from_header_meta_and_detection():
    rows, stats = _rows(BAD / "charsets.warc.gz")
    got = {r["url"].rsplit("/", 1)[1]: (json.loads(r["meta"]), r["text"]) for r in rows}
    assert set(got) == {"latin1", "sjis", "cp1251", "liar"} and not stats.skipped
    assert got["latin1"][0]["charset_source"] == "http"
    assert "Voilà l'été: à Noël, où êtes-vous? Ça coûte très cher, garçon." in got["latin1"][1]
    assert (got["sjis"][0]["charset"], got["sjis"][0]["charset_source"]) == ("shift_jis", "meta")
    assert "日本語のページです。文字コードはシフトJISで宣言されています。" in got["sjis"][1]
    assert got["cp1251"][0]["charset_source"] == "detected" and got["cp1251"][0]["encoding_detected"]
    assert "Съешь же ещё этих мягких французских булок, да выпей же чаю." in got["cp1251"][1]
    # declared utf-8 in the header, but the bytes are latin-1: detection takes over
    assert got["liar"][0]["charset_source"] == "detected"
    assert "Voilà l'été" in got["liar"][1]
    assert not any(m.get("decode_errors") for m, _ in got.values())


GOOD = ["http://example.org/a", "http://example.org/c"]


@pytest.mark.parametrize(
    "name, urls, skipped",
    [
        ("good.warc.gz", ["http://example.org/a", "http://example.org/b", "http://example.org/c"],
         {"non_html": 1, "http_status": 1}),
        ("truncated.warc.gz", ["http://example.org/a", "http://example.org/b"], {"truncated_record": 1}),
        ("corrupt_member.warc.gz", GOOD, {"corrupt_record": 1}),
        ("bad_header.warc", GOOD, {"corrupt_record": 1}),
        ("long_length.warc", GOOD, {"corrupt_record": 1, "bad_length": 1}),
        ("short_length.warc.gz", GOOD, {"corrupt_record": 1, "bad_length": 1}),
        ("nul.warc.gz", GOOD, {"nul_bytes": 1}),
        ("empty.warc.gz", [], {"empty_file": 1}),
    ],
)
def test_bad_input_is_a_counted_skip_and_the_good_records_around_it_are_read(name, urls, skipped):
    rows, stats = _rows(BAD / name)
    assert [r["url"] for r in rows] == urls
    assert dict(stats.skipped) == skipped
    assert stats.records == len(urls)
    for r in rows:  # the neighbours are intact, not polluted by the damage
        page = r["url"].rsplit("/", 1)[1]
        assert r["text"].startswith("<html><head><meta charset=\"utf-8\"><title>page " + page)
        assert r["text"].endswith("</p></body></html>")


def test_skip_log_names_the_file_and_offset(caplog):
    path = BAD / "truncated.warc.gz"
    with caplog.at_level(logging.WARNING, logger="curator.readers"):
        _rows(path)
    # the truncated record is the third gzip member: its offset is the size of the first two
    data = path.read_bytes()
    second = data.index(b"\x1f\x8b\x08", 1)
    third = data.index(b"\x1f\x8b\x08", second + 1)
    assert f"{path}@{third}: truncated_record" in caplog.text


def test_a_record_over_max_doc_bytes_is_skipped_without_losing_its_neighbours():
    rows, stats = _rows(BAD / "good.warc.gz", max_doc_bytes=1000)
    assert [r["url"] for r in rows] == GOOD
    assert stats.skipped["too_large"] == 1


def test_warcio_backend_reports_what_it_cannot_resume_from():
    rows, stats = _rows(BAD / "bad_header.warc", backend="warcio")
    assert [r["url"] for r in rows] == ["http://example.org/a"]
    assert stats.skipped == {"corrupt_record": 1}


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown WARC backend 'nope'"):
        list(read_warc(SAMPLE, backend="nope"))


def test_content_type_and_meta_charset_parsing():
    assert parse_content_type("Text/HTML; Charset=\"ISO-8859-1\"") == ("text/html", "cp1252")
    assert parse_content_type("text/html;charset=utf-8") == ("text/html", "utf-8")
    assert parse_content_type("image/png") == ("image/png", None)
    assert parse_content_type(None) == ("", None)
    assert sniff_meta_charset(b'<html><head><meta charset="windows-1251">') == "cp1251"
    assert sniff_meta_charset(b'<meta http-equiv="Content-Type" content="text/html; charset=EUC-JP">') \
        == "euc_jp"
    assert sniff_meta_charset(b" " * 5000 + b'<meta charset="koi8-r">') is None  # past the sniff window
    assert sniff_meta_charset(b"<p>no declaration</p>") is None


@st.composite
def _encodable(draw):
    """A charset and a text every character of which that charset encodes (drawn from it, not filtered)."""
    charset = draw(st.sampled_from(["utf-8", "cp1252", "cp1251", "shift_jis", "utf-16-le"]))
    text = draw(st.text(st.characters(codec=charset, exclude_categories=["Cs"]), min_size=1, max_size=300))
    return text, charset


@settings(max_examples=200, deadline=None)
@given(case=_encodable())
def test_a_declared_charset_decodes_back_to_the_original_text(case):
    text, charset = case
    body = text.encode(charset)
    assume(body.decode(charset) == text)  # shift_jis maps "¥" to "\\": not a round trip in the codec itself
    decoded, used, how, errors = decode_html(body, charset)
    assert (decoded, used, how, errors) == (text.removeprefix("\ufeff"), charset, "http", False)


def test_tables_concatenate_into_one_core_table(sample):
    tables = list(read_warc(SAMPLE, batch_size=64))
    assert pa.concat_tables(tables).num_rows == 256


@pytest.mark.parametrize("content", [b"hello\nthis is not a WARC file\n", bytes(range(256)) * 8])
def test_a_file_that_is_not_a_warc_is_one_counted_skip(tmp_path, content):
    p = tmp_path / "x.warc"
    p.write_bytes(content)
    rows, stats = _rows(p)
    assert rows == [] and stats.skipped == {"corrupt_record": 1}


def _response(uri: str, headers: list[tuple[str, str]], payload: bytes) -> bytes:
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=False)
    http = StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1")
    w.write_record(w.create_warc_record(uri, "response", payload=io.BytesIO(payload), length=len(payload),
                                        http_headers=http))
    return buf.getvalue()


@pytest.mark.parametrize("backend", ["fastwarc", "warcio"])
def test_gzip_content_encoding_and_chunked_transfer_are_undone(tmp_path, backend):
    import gzip

    body = "<html><body><p>compressed ünïcödé page</p></body></html>".encode()
    html = [("Content-Type", "text/html; charset=utf-8")]
    gz = gzip.compress(body)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    p = tmp_path / "enc.warc"
    encoded = [*html, ("Content-Encoding", "gzip"), ("Content-Length", str(len(gz)))]
    p.write_bytes(_response("http://e/gz", encoded, gz)
                  + _response("http://e/chunked", [*html, ("Transfer-Encoding", "chunked")], chunked))
    rows, stats = _rows(p, backend=backend)
    text = body.decode()
    assert [(r["url"], r["text"]) for r in rows] == [("http://e/gz", text), ("http://e/chunked", text)]
    assert not stats.skipped
