"""Fuzz targets for every reader and its input-facing options (hypothesis strategies + checks).

The contract they check: whatever the bytes, a reader never raises; it yields core-schema tables and
turns every problem into a counted skip, and a well-formed record before the damage is never lost.
``tests/readers/test_fuzz.py`` runs a bounded number of examples in CI; ``bench/bench_fuzz.py`` runs many
more and reports the executions.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from hypothesis import strategies as st

from curator.readers import read_file
from curator.readers.base import ReadStats
from curator.schema import CORE_SCHEMA

REPO = Path(__file__).resolve().parents[2]
SEEDS = {
    "warc": [REPO / "tests/data/bad/good.warc.gz", REPO / "tests/data/bad/charsets.warc.gz"],
    "wet": [REPO / "tests/data/bad/bad_utf8.warc.wet.gz"],
}
SUFFIX = {"warc": ".warc.gz", "wet": ".warc.wet.gz", "jsonl": ".jsonl", "jsonl.gz": ".jsonl.gz",
          "jsonl.zst": ".jsonl.zst", "parquet": ".parquet", "arrow": ".arrow"}


def read_all(path: Path, **options) -> tuple[list[dict], ReadStats]:
    """Read a file completely; the check that it never raises and only yields core-schema tables."""
    stats = ReadStats(path=str(path))
    rows = []
    for table in read_file(str(path), stats=stats, **options):
        assert table.schema == CORE_SCHEMA
        assert table.column("id").null_count == 0
        rows.extend(table.to_pylist())
    return rows, stats


# --- JSON lines: valid records mixed with damaged lines, optionally compressed and truncated

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children,
                                                                                               max_size=3),
                           max_leaves=6)
good_line = st.builds(lambda t, extra: json.dumps({"text": t, **extra}, ensure_ascii=False).encode("utf-8"),
                      st.text(min_size=1, max_size=200), st.dictionaries(st.sampled_from(["url", "id", "meta"]),
                                                                          json_values, max_size=2))
bad_line = st.one_of(st.binary(max_size=80).filter(lambda b: b"\n" not in b),
                     st.builds(lambda v: json.dumps(v).encode(), json_values),
                     st.just(b'{"text": "unterminated'), st.just(b'{"text": "\\ud800"}'), st.just(b"\xef\xbb\xbf"))
jsonl_file = st.tuples(st.lists(st.one_of(good_line, bad_line), max_size=30),
                       st.sampled_from(["jsonl", "jsonl.gz", "jsonl.zst"]), st.integers(0, 100),
                       st.sampled_from(["text", "body"]), st.sampled_from([None, "id", "missing"]))


def check_jsonl(case: tuple, folder: Path) -> None:
    lines, kind, cut_percent, text_field, id_field = case
    raw = b"".join(line + b"\n" for line in lines)
    data = {"jsonl": raw, "jsonl.gz": gzip.compress(raw), "jsonl.zst": zstandard.ZstdCompressor().compress(raw)}[kind]
    truncated = cut_percent < 100
    data = data[: len(data) * cut_percent // 100] if truncated else data
    path = folder / f"f{SUFFIX[kind]}"
    path.write_bytes(data)
    rows, stats = read_all(path, text_field=text_field, id_field=id_field)
    assert len(rows) <= len(lines)
    if not truncated and text_field == "text":  # every good line is there, in order
        good = [json.loads(line)["text"] for line in lines if _good(line)]
        assert [r["text"] for r in rows] == good


def _good(line: bytes) -> bool:
    try:
        obj = json.loads(line)
    except ValueError:
        return False
    return isinstance(obj, dict) and isinstance(obj.get("text"), str) and "\x00" not in obj["text"] and \
        _encodable(obj)


def _encodable(obj) -> bool:
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- WARC / WET: mutations of real files (flipped bytes, cuts, insertions), compressed or not

mutation = st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert", "zero"]), st.floats(0, 1),
                              st.binary(min_size=1, max_size=16)), max_size=4)
record_file = st.tuples(st.sampled_from(["warc", "wet"]), st.integers(0, 1), mutation, st.booleans())


def mutate(data: bytes, ops: list[tuple]) -> bytes:
    out = bytearray(data)
    for op, where, blob in ops:
        i = int(where * max(0, len(out) - 1))
        if op == "flip" and out:
            out[i] ^= blob[0] or 1
        elif op == "cut":
            del out[i:]
        elif op == "insert":
            out[i:i] = blob
        elif op == "zero" and out:
            out[i:i + len(blob)] = bytes(len(out[i:i + len(blob)]))
    return bytes(out)


def check_records(case: tuple, folder: Path) -> None:
    fmt, which, ops, decompress = case
    seeds = SEEDS[fmt]
    data = seeds[which % len(seeds)].read_bytes()
    if decompress:
        data = gzip.decompress(data)
    path = folder / ("f.warc.wet" if fmt == "wet" else "f.warc") if decompress else folder / f"f{SUFFIX[fmt]}"
    path.write_bytes(mutate(data, ops))
    read_all(path)
    read_all(path, backend="warcio")


# --- Parquet: any column types under the text/id/url names, nulls, invalid UTF-8 bytes

column = st.one_of(
    st.lists(st.one_of(st.none(), st.text(max_size=50)), min_size=1, max_size=8).map(lambda v: pa.array(v,
                                                                                                        pa.string())),
    st.lists(st.one_of(st.none(), st.binary(max_size=20)), min_size=1, max_size=8).map(lambda v: pa.array(v,
                                                                                                          pa.binary())),
    st.lists(st.integers(-10, 10), min_size=1, max_size=8).map(pa.array),
    st.lists(st.lists(st.text(max_size=5), max_size=3), min_size=1, max_size=8).map(pa.array),
    st.lists(st.fixed_dictionaries({"x": st.text(max_size=5)}), min_size=1, max_size=8).map(pa.array),
)
parquet_file = st.tuples(column, column, st.sampled_from(["text", "body"]), st.sampled_from([None, "id", "nope"]),
                         st.sampled_from([None, "url"]))


def check_parquet(case: tuple, folder: Path) -> None:
    text, other, text_column, id_column, url_column = case
    n = min(len(text), len(other))
    table = pa.table({"text": text.slice(0, n), "id": other.slice(0, n), "url": other.slice(0, n)})
    path = folder / "f.parquet"
    pq.write_table(table, path)
    rows, stats = read_all(path, text_column=text_column, id_column=id_column, url_column=url_column)
    assert len(rows) + sum(stats.skipped.values()) >= min(1, n) or n == 0


arrow_file = st.tuples(parquet_file, st.integers(0, 400))


def check_arrow(case: tuple, folder: Path) -> None:
    """An IPC stream of the same columns, cut after ``cut`` bytes (0: whole): never raises."""
    (text, other, text_column, id_column, url_column), cut = case
    n = min(len(text), len(other))
    table = pa.table({"text": text.slice(0, n), "id": other.slice(0, n), "url": other.slice(0, n)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=2)
    data = sink.getvalue().to_pybytes()
    path = folder / "f.arrow"
    path.write_bytes(data[:cut] if cut else data)
    rows, stats = read_all(path, text_column=text_column, id_column=id_column, url_column=url_column)
    if not cut:
        assert len(rows) + sum(stats.skipped.values()) >= min(1, n) or n == 0


def run_case(check, case) -> None:
    with tempfile.TemporaryDirectory() as d:
        check(case, Path(d))


TARGETS = {"jsonl": (jsonl_file, check_jsonl), "warc_wet": (record_file, check_records),
           "parquet": (parquet_file, check_parquet), "arrow": (arrow_file, check_arrow)}
