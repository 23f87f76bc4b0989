"""Streaming decompression and marker search (curator/readers/io.py)."""

from __future__ import annotations

import gzip
import io

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.readers.io import decompressed, find_marker, sniff_compression


def _zstd_frames(parts: list[bytes]) -> bytes:
    return b"".join(zstandard.ZstdCompressor().compress(p) for p in parts)


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(st.binary(max_size=3000), min_size=1, max_size=5),
       kind=st.sampled_from(["gz", "zst", "raw"]))
def test_round_trip_over_members_and_frames(parts, kind):
    data = b"".join(parts)
    if kind == "gz":
        blob = b"".join(gzip.compress(p) for p in parts)
    elif kind == "zst":
        blob = _zstd_frames(parts)
    else:
        blob = data
    if kind != "raw" or not data.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd")):
        assert decompressed(io.BytesIO(blob)).read() == data


def test_truncation_delivers_the_decoded_prefix_then_raises():
    data = b"".join(b"line %05d\n" % i for i in range(20000))
    blob = gzip.compress(data)
    stream = decompressed(io.BytesIO(blob[: len(blob) // 2]))
    got = b""
    with pytest.raises(EOFError, match="gzip stream ended"):
        while chunk := stream.read(4096):
            got += chunk
    assert len(got) > len(data) // 4 and data.startswith(got)


def test_sniff_and_find_marker_across_chunk_boundaries():
    assert sniff_compression(b"\x1f\x8b\x08\x00") == "gzip"
    assert sniff_compression(b"\x28\xb5\x2f\xfd") == "zstd"
    assert sniff_compression(b"WARC") is None
    raw = io.BytesIO(b"x" * 10 + b"WARC/1.0" + b"y" * 10 + b"WARC/1.1")
    assert find_marker(raw, 0, b"WARC/1.", chunk=4) == 10
    assert find_marker(raw, 11, b"WARC/1.", chunk=3) == 28
    assert find_marker(raw, 29, b"WARC/1.", chunk=5) is None


@settings(max_examples=100, deadline=None)
@given(before=st.binary(max_size=200), after=st.binary(max_size=50), start=st.integers(0, 60),
       chunk=st.integers(1, 40))
def test_find_marker_finds_the_first_occurrence_at_or_after_start(before, after, start, chunk):
    blob = before + b"MARK" + after
    raw = io.BytesIO(blob)
    expected = blob.find(b"MARK", start)
    assert find_marker(raw, start, b"MARK", chunk=chunk) == (expected if expected >= 0 else None)
