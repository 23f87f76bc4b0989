"""Make the tiny bad-input files in tests/data/bad/ (re-runnable: ``python tests/data/make_bad.py``).

Each damaged file is built from good records around one defect, so a test can check both the
counted skip and that every good record before and after the defect is still read. The WARCs are
written with warcio (not fastwarc, the parser under test) and damaged at byte level here.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

OUT = Path(__file__).resolve().parent / "bad"
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november "
         "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def _words(seed: int, n: int) -> str:
    rnd = random.Random(seed)
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def html(name: str, n_words: int = 30, charset_meta: str | None = "utf-8") -> bytes:
    meta = f'<meta charset="{charset_meta}">' if charset_meta else ""
    return (f"<html><head>{meta}<title>{name}</title></head><body><p>{name}: "
            f"{_words(zlib.crc32(name.encode()), n_words)}</p></body></html>").encode()


def response(uri: str, body: bytes, content_type: str = "text/html; charset=utf-8",
             status: str = "200 OK", record_id: str | None = None) -> bytes:
    """One gzip-free WARC response record as bytes (warcio writer, fixed record id)."""
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=False)
    http = StatusAndHeaders(status, [("Content-Type", content_type),
                                     ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
    rid = record_id or f"<urn:uuid:00000000-0000-4000-8000-{zlib.crc32(uri.encode()):012d}>"
    rec = w.create_warc_record(uri, "response", payload=io.BytesIO(body), length=len(body),
                               http_headers=http, warc_headers_dict={"WARC-Record-ID": rid,
                                                                     "WARC-Date": "2026-01-01T00:00:00Z"})
    w.write_record(rec)
    return buf.getvalue()


def conversion(uri: str, text: bytes, refers_to: str) -> bytes:
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=False)
    rec = w.create_warc_record(uri, "conversion", payload=io.BytesIO(text), length=len(text),
                               warc_content_type="text/plain",
                               warc_headers_dict={
                                   "WARC-Refers-To": refers_to, "WARC-Date": "2026-01-01T00:00:00Z",
                                   "WARC-Record-ID": f"<urn:uuid:{zlib.crc32(uri.encode()):08x}>"})
    w.write_record(rec)
    return buf.getvalue()


def gz_members(records: list[bytes]) -> list[bytes]:
    return [gzip.compress(r, mtime=0) for r in records]


def abc(big: int = 30) -> list[bytes]:
    """Three good HTML responses a, b, c (b with ``big`` words)."""
    return [response("http://example.org/a", html("page a")),
            response("http://example.org/b", html("page b", big)),
            response("http://example.org/c", html("page c"))]


def set_content_length(record: bytes, delta: int) -> bytes:
    head, sep, rest = record.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    for i, line in enumerate(lines):
        if line.lower().startswith(b"content-length:"):
            lines[i] = b"Content-Length: %d" % (int(line.split(b":")[1]) + delta)
    return b"\r\n".join(lines) + sep + rest


def write(name: str, data: bytes) -> None:
    (OUT / name).write_bytes(data)


def make_warcs() -> None:
    a, b, c = abc()
    png = response("http://example.org/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(64)), "image/png")
    e404 = response("http://example.org/gone", html("gone"), status="404 Not Found")
    write("good.warc.gz", b"".join(gz_members([a, png, *abc(big=400)[1:2], e404, c])))

    # truncated gzip: the last member (c, made long) cut in half
    a, b, c_long = response("http://example.org/a", html("page a")), b, \
        response("http://example.org/c", html("page c", 2000))
    members = gz_members([a, b, c_long])
    write("truncated.warc.gz", b"".join(members[:2]) + members[2][: len(members[2]) // 2])

    # corrupt gzip member in the middle: b's deflate data overwritten
    members = gz_members([a, b, c])
    bad = bytearray(members[1])
    for i in range(20, len(bad) - 20):
        bad[i] ^= 0x5A
    write("corrupt_member.warc.gz", members[0] + bytes(bad) + members[2])

    # mangled WARC header line of b (uncompressed file)
    write("bad_header.warc", a + b.replace(b"WARC/1.0\r\n", b"WARX/9.9\r\n", 1) + c)
    # b declares 40 bytes more than it has (runs into c) / 40 bytes less (gzip members)
    write("long_length.warc", a + set_content_length(b, +40) + c)
    write("short_length.warc.gz", b"".join(gz_members([a, set_content_length(b, -40), c])))

    # NUL bytes in b's HTML
    nul = response("http://example.org/b", html("page b").replace(b"</p>", b"\x00\x00</p>"))
    write("nul.warc.gz", b"".join(gz_members([a, nul, c])))

    # charsets: header, <meta>, undeclared (detected), declared utf-8 but really latin-1
    ru = "Съешь же ещё этих мягких французских булок, да выпей же чаю. " * 8
    fr = "Voilà l'été: à Noël, où êtes-vous? Ça coûte très cher, garçon. " * 8
    ja = "日本語のページです。文字コードはシフトJISで宣言されています。" * 8
    recs = [
        response("http://example.org/latin1", f"<html><body><p>{fr}</p></body></html>".encode("latin-1"),
                 "text/html; charset=ISO-8859-1"),
        response("http://example.org/sjis",
                 f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">'
                 f"</head><body><p>{ja}</p></body></html>".encode("shift_jis"), "text/html"),
        response("http://example.org/cp1251", f"<html><body><p>{ru}</p></body></html>".encode("cp1251"),
                 "text/html"),
        response("http://example.org/liar", f"<html><body><p>{fr}</p></body></html>".encode("latin-1"),
                 "text/html; charset=utf-8"),
    ]
    write("charsets.warc.gz", b"".join(gz_members(recs)))
    write("empty.warc.gz", b"")


def make_wet() -> None:
    recs = [conversion("http://example.org/a", b"page a text", "<urn:uuid:1>"),
            conversion("http://example.org/b", b"page b \xff\xfe not utf-8", "<urn:uuid:2>"),
            conversion("http://example.org/c", "page c text, ça va".encode(), "<urn:uuid:3>")]
    write("bad_utf8.warc.wet.gz", b"".join(gz_members(recs)))


def jsonl_lines() -> list[bytes]:
    return [json.dumps({"text": f"good {i}: {_words(i, 20)}", "meta": {"pile_set_name": "Test"}}).encode()
            for i in range(1, 4)]


def make_jsonl() -> None:
    g1, g2, g3 = jsonl_lines()
    lines = [
        g1,
        b"[1, 2, 3]",  # not_object
        b'{"content": "no text field"}',  # missing_text
        b'{"text": 5}',  # missing_text
        b'{"text": "unterminated',  # invalid_json
        b'{"text": "caf\xe9 latin-1 bytes"}',  # invalid_utf8
        b'{"text": "raw nul \x00 byte"}',  # nul_bytes
        b'{"text": "escaped nul \\u0000 char"}',  # nul_bytes
        b"   ",  # empty_line
        g2,
        json.dumps({"text": "x" * 600}).encode(),  # too_large with max_doc_bytes=500
        g3,
    ]
    write("mixed.jsonl", b"\n".join(lines) + b"\n")

    many = [json.dumps({"text": f"line {i} {_words(i, 40)}"}).encode() + b"\n" for i in range(60)]
    gz = gzip.compress(b"".join(many), mtime=0)
    write("truncated.jsonl.gz", gz[: len(gz) * 3 // 4])
    # zstd in small blocks (as a streaming writer flushes them), cut inside the last blocks
    cobj = zstandard.ZstdCompressor(level=3).compressobj()
    parts = []
    for line in many:
        parts.append(cobj.compress(line))
        parts.append(cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))
    parts.append(cobj.flush())
    zst = b"".join(parts)
    write("truncated.jsonl.zst", zst[: len(zst) * 3 // 4])
    # corrupt deflate data in the middle of a gzip stream
    raw = zlib.compressobj(6, zlib.DEFLATED, 31)
    gz = raw.compress(b"".join(many)) + raw.flush()
    bad = bytearray(gz)
    for i in range(len(bad) // 2, len(bad) // 2 + 16):
        bad[i] ^= 0xFF
    write("corrupt.jsonl.gz", bytes(bad))
    write("empty.jsonl.zst", b"")


def make_parquet() -> None:
    t = pa.table({"body": ["first good", None, "has \x00 nul", "y" * 600, "last good"],
                  "key": ["k1", "k2", "k3", "k4", "k5"]})
    pq.write_table(t, OUT / "rows.parquet", row_group_size=2)
    write("not_parquet.parquet", b"PAR1 this is not a parquet file at all PAR1")
    # two row groups of three rows; the second one's compressed pages overwritten
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": [f"doc {i} " + "x" * 50 for i in range(6)]}), buf,
                   row_group_size=3, compression="zstd")
    data = bytearray(buf.getvalue())
    col = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(1).column(0)
    start = col.dictionary_page_offset or col.data_page_offset
    for i in range(start + 20, start + col.total_compressed_size - 2):
        data[i] ^= 0x55
    write("bad_row_group.parquet", bytes(data))


def main() -> None:
    OUT.mkdir(exist_ok=True)
    make_warcs()
    make_wet()
    make_jsonl()
    make_parquet()
    for p in sorted(OUT.iterdir()):
        print(f"{p.stat().st_size:8d} {p.name}")


if __name__ == "__main__":
    main()
