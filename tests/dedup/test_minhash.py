"""MinHash signatures: shingling, agreement with datasketch, and estimate accuracy (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.dedup.minhash import jaccard_sorted, shingle_sets, signatures


def _set(sh, i):
    return sh.values[sh.offsets[i]: sh.offsets[i + 1]]


def test_shingle_counts_and_normalization():
    texts = pa.array(["a b c d e f g", "A, b!  c d\te f g", "", None, "two words", "¡¿ ... !!"])
    sh = shingle_sets(texts, 5, seed=0)
    # 7 words -> 3 five-word shingles; case/punctuation/whitespace do not matter; short -> 1; empty -> 0
    assert sh.sizes().tolist() == [3, 3, 0, 0, 1, 0]
    assert np.array_equal(_set(sh, 0), _set(sh, 1))
    assert np.all(np.diff(_set(sh, 0).astype(np.int64)) > 0)  # sorted unique
    repeated = shingle_sets(pa.array(["x y x y x y x y"]), 2, seed=0)
    assert repeated.sizes().tolist() == [2]  # {"x y", "y x"}
    other_seed = shingle_sets(texts, 5, seed=1)
    assert not np.array_equal(_set(sh, 0), _set(other_seed, 0))


def test_word_order_matters_and_shingles_do_not_cross_documents():
    sh = shingle_sets(pa.array(["a b c", "c b a", "a b", "c"]), 3, seed=0)
    assert not np.array_equal(_set(sh, 0), _set(sh, 1))
    joined = shingle_sets(pa.array(["a b c"]), 3, seed=0)
    assert np.array_equal(_set(sh, 0), _set(joined, 0))


def test_signatures_equal_datasketch_affine32():
    texts = pa.array(["the cat sat on the mat and looked at the other cat " * 3,
                      "completely different words in this one", "", "one"])
    sh = shingle_sets(texts, 3, seed=7)
    sig = signatures(sh, 64, seed=7)
    for i in range(len(texts)):
        m = MinHash(num_perm=64, seed=7, hashfunc=lambda h: h)
        vals = _set(sh, i)
        if len(vals):
            m.update_batch([int(v) for v in vals])
        assert np.array_equal(m.hashvalues, sig[i])


words = st.lists(st.sampled_from([f"w{i}" for i in range(40)]), min_size=30, max_size=150)


@settings(max_examples=80, deadline=None)
@given(words, st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["x", "y", "z", "w1"])),
                       max_size=40), st.integers(0, 2**31))
def test_signature_estimate_within_statistical_bounds(base, edits, seed):
    other = list(base)
    for pos, word in edits:
        other[pos % len(other)] = word
    sh = shingle_sets(pa.array([" ".join(base), " ".join(other)]), 3, seed=seed)
    true = jaccard_sorted(_set(sh, 0), _set(sh, 1))
    k = 256
    sig = signatures(sh, k, seed=seed)
    est = float(np.mean(sig[0] == sig[1]))
    bound = 4.5 * math.sqrt(max(true * (1 - true), 0.01) / k) + 0.02
    assert abs(est - true) <= bound, (est, true)


_CHARS = list("aAbBéÉß ,.!¿—\t\n-'😀Σς\u00a0\u2003\u3000")  # Unicode spaces: NBSP, em space, ideographic


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from(_CHARS), max_size=30)), max_size=8))
def test_word_hashes_equal_normalizing_the_whole_text(texts):
    """Normalizing only the distinct whitespace tokens gives the words of normalizing each whole text."""
    from curator.dedup.minhash import _hash_strings, split_words, word_hashes

    arr = pa.array(texts, pa.string())
    hashes, counts = word_hashes(arr, seed=3)
    words = [[w for w in ws if w] for ws in split_words(arr).to_pylist()]
    assert counts.tolist() == [len(ws) for ws in words]
    flat = pa.array([w for ws in words for w in ws], pa.string())
    assert hashes.tolist() == _hash_strings(flat, 3).tolist()
