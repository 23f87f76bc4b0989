"""Build the text parts of the bundled sample (called by make_sample.sh).

    python examples/make_sample.py wet   IN.warc.gz OUT.warc.wet.gz
        WET conversion records (text/plain) made from the HTML responses of a WARC: resiliparse
        plain-text extraction, one record per page, written with warcio (so the project's fastwarc
        reader is tested on a file it did not write).
    python examples/make_sample.py jsonl OUT.jsonl.zst
        Pile-style {"text", "meta": {"pile_set_name", ...}} lines from real text Debian installs:
        /usr/share/common-licenses ("Licenses"), /usr/share/doc/*/copyright ("DebianCopyright") and
        the plain-text Debian FAQ / New Maintainers' Guide in several languages ("DebianDocs").
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import uuid
from pathlib import Path

MAX_COPYRIGHT = 240  # copyright files, first N by sorted path
CHUNK_CHARS = 4000  # DebianDocs: split each manual into chunks of about this many characters
MAX_CHUNKS = 12  # per manual


def make_wet(warc_path: str, wet_path: str) -> None:
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import detect_encoding
    from resiliparse.parse.html import HTMLTree
    from warcio.warcwriter import WARCWriter

    n = 0
    with open(wet_path, "wb") as out:
        writer = WARCWriter(out, gzip=True, warc_version="WARC/1.0")
        info = {"software": "curator examples/make_sample.py (resiliparse extract_plain_text)",
                "description": f"WET text extracted from {Path(warc_path).name}"}
        writer.write_record(writer.create_warcinfo_record(Path(wet_path).name, info))
        for rec in ArchiveIterator(warc_path, record_types=WarcRecordType.response, parse_http=True):
            ctype = (rec.http_content_type or "").lower()
            status = rec.http_headers.status_code if rec.http_headers else None
            if ctype != "text/html" or status != 200:
                continue
            body = rec.reader.read()
            enc = rec.http_charset or detect_encoding(body)
            text = extract_plain_text(HTMLTree.parse_from_bytes(body, enc), main_content=False)
            data = text.encode("utf-8")
            uri = rec.headers["WARC-Target-URI"].strip("<>")  # wget writes <uri>; CC writes uri
            headers = {
                "WARC-Date": rec.headers["WARC-Date"],
                "WARC-Record-ID": f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, rec.record_id)}>",
                "WARC-Refers-To": rec.record_id,
            }
            rec_out = writer.create_warc_record(
                uri, "conversion", payload=io.BytesIO(data), length=len(data),
                warc_content_type="text/plain", warc_headers_dict=headers,
            )
            writer.write_record(rec_out)
            n += 1
    print(f"wrote {n} conversion records to {wet_path}")


def _read_text(path: Path) -> str | None:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _chunks(text: str) -> list[str]:
    """Split a manual at paragraph boundaries into pieces of about CHUNK_CHARS characters."""
    out, cur, size = [], [], 0
    for para in text.split("\n\n"):
        cur.append(para)
        size += len(para) + 2
        if size >= CHUNK_CHARS:
            out.append("\n\n".join(cur).strip())
            cur, size = [], 0
    if cur:
        out.append("\n\n".join(cur).strip())
    return [c for c in out if c]


def _docs() -> list[tuple[str, str, str]]:
    """(pile_set_name, source path, text) in a deterministic order."""
    docs = []
    for p in sorted(Path("/usr/share/common-licenses").iterdir()):
        if p.is_file() and not p.is_symlink() and (t := _read_text(p)):
            docs.append(("Licenses", str(p), t))
    copyrights = sorted(p for p in Path("/usr/share/doc").glob("*/copyright") if not p.is_symlink())
    for p in copyrights[:MAX_COPYRIGHT]:
        if t := _read_text(p):
            docs.append(("DebianCopyright", str(p), t))
    manuals = sorted(Path("/usr/share/doc/debian/FAQ").glob("debian-faq.*.txt.gz"))
    manuals += sorted(Path("/usr/share/doc").glob("maint-guide*/maint-guide.*.txt.gz"))
    for p in manuals:
        if t := _read_text(p):
            for i, chunk in enumerate(_chunks(t)[:MAX_CHUNKS]):
                docs.append(("DebianDocs", f"{p}#{i}", chunk))
    return docs


def make_jsonl(out_path: str) -> None:
    import zstandard

    docs = _docs()
    with open(out_path, "wb") as f, zstandard.ZstdCompressor(level=19).stream_writer(f) as z:
        for set_name, path, text in docs:
            line = {"text": text, "meta": {"pile_set_name": set_name, "path": path}}
            z.write(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")
    counts: dict[str, int] = {}
    for s, _, _ in docs:
        counts[s] = counts.get(s, 0) + 1
    print(f"wrote {len(docs)} docs to {out_path}: {counts}")


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "wet":
        make_wet(*args)
    elif cmd == "jsonl":
        make_jsonl(*args)
    else:
        sys.exit(f"unknown command {cmd!r}: use wet or jsonl")
