"""Text normalization for dedup hashing, done with Arrow compute kernels over a whole batch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_PUNCT = r"[\p{P}\p{S}]+"


def normalize(
    text: pa.Array | pa.ChunkedArray,
    *,
    lowercase: bool = True,
    fold_whitespace: bool = True,
    strip_punctuation: bool = False,
) -> pa.Array:
    """Return the normalized text column (nulls become empty strings).

    ``strip_punctuation`` replaces runs of Unicode punctuation and symbols by a space (before whitespace
    folding, so "a,b" becomes "a b"); ``fold_whitespace`` turns every whitespace run into one space and
    trims both ends.
    """
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if pa.types.is_large_string(text.type):
        text = text.cast(pa.string())
    out = pc.fill_null(text, "")
    if lowercase:
        out = pc.utf8_lower(out)
    if strip_punctuation:
        out = pc.replace_substring_regex(out, _PUNCT, " ")
    if fold_whitespace:
        out = pc.utf8_trim_whitespace(pc.replace_substring_regex(out, r"\s+", " "))
    return out


def utf8_views(arr: pa.Array) -> Iterator[memoryview]:
    """Yield each string of a (non-null) string array as a zero-copy memoryview of its UTF-8 bytes."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    _, offsets_buf, data_buf = arr.buffers()
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=width)[arr.offset: arr.offset + len(arr) + 1]
    data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
    for start, end in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True):
        yield data[start:end]
