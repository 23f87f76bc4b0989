"""WET reader: the bundled WET (made from the bundled WARC) and invalid UTF-8."""

from __future__ import annotations

import json
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from curator.readers import read_file
from curator.readers.base import ReadStats
from curator.schema import CORE_SCHEMA, make_id

REPO = Path(__file__).resolve().parents[2]
WET = str(REPO / "examples/data/sample.warc.wet.gz")
WARC = str(REPO / "examples/data/sample.warc.gz")
BAD = REPO / "tests/data/bad"


def _rows(path, **kw):
    stats = ReadStats(path=str(path))
    tables = list(read_file(str(path), stats=stats, **kw))
    assert all(t.schema == CORE_SCHEMA for t in tables)
    return [r for t in tables for r in t.to_pylist()], stats


def test_sample_wet_matches_warcio_and_shares_ids_with_the_warc():
    with open(WET, "rb") as f:
        expected = [(r.rec_headers.get_header("WARC-Target-URI"), r.content_stream().read().decode())
                    for r in ArchiveIterator(f) if r.rec_type == "conversion"]
    rows, stats = _rows(WET)
    assert len(rows) == len(expected) == 256 and not stats.skipped
    assert [(r["url"], r["text"]) for r in rows] == expected
    warc = {r["id"]: r["url"] for t in read_file(WARC) for r in t.to_pylist()}
    assert {r["id"]: r["url"] for r in rows} == warc  # one page, one id, whichever file it came from
    meta = json.loads(rows[0]["meta"])
    assert rows[0]["id"] == make_id("warc", meta["warc_refers_to"]) and rows[0]["source"] == "wet"
    assert "Debian GNU/Linux FAQ" in rows[0]["text"] and "<html" not in rows[0]["text"]


def test_backends_agree_on_the_sample_wet():
    assert _rows(WET, backend="warcio")[0] == _rows(WET)[0]


def test_invalid_utf8_record_is_skipped_between_good_ones():
    rows, stats = _rows(BAD / "bad_utf8.warc.wet.gz")
    assert [(r["url"], r["text"]) for r in rows] == [
        ("http://example.org/a", "page a text"), ("http://example.org/c", "page c text, ça va")]
    assert [r["id"] for r in rows] == [make_id("warc", "<urn:uuid:1>"), make_id("warc", "<urn:uuid:3>")]
    assert stats.skipped == {"invalid_utf8": 1}
