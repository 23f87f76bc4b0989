"""Model-based quality: a fastText classifier the user trains (``curator train-classifier``).

:class:`QualityClassifier` (stage ``quality_classifier``) loads a fastText supervised model file (one made
by :func:`train_classifier`, or by the fastText CLI), writes ``score_column`` (default ``quality_score``)
= P(``positive_label``) and drops documents scoring below ``threshold`` with reason
``quality_classifier_low``. Only the first ``max_chars`` characters (newlines as spaces) are inspected.

:func:`train_classifier` reads positive and negative documents from files matched by globs (``.txt``: one
document per line, or per file; ``.jsonl``/``.jsonl.gz``/``.jsonl.zst``; ``.parquet``), holds out a
fraction, trains with :func:`curator.stages.fasttext_model.train_supervised` (our NumPy implementation of
fastText's supervised learner; see that module for why not the C++ trainer) and saves a fastText ``.bin``.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from curator.paths import InputPath
from curator.stages.base import Column, Stage, StageConfig, set_column, set_drops
from curator.stages.fasttext_model import FastTextModel, prepare_text, save_model, train_supervised

log = logging.getLogger(__name__)


class QualityClassifierConfig(StageConfig):
    model_path: InputPath = Field(description="fastText model file (.bin/.ftz) trained by `curator train-classifier`")
    positive_label: str = Field("positive", description="the model's label (without __label__) whose probability "
                                "is the score")
    score_column: str = Field("quality_score", description="column the score is written to")
    threshold: float = Field(0.5, ge=0, le=1, description="score (probability 0-1 of positive_label) below which a "
                             "document is dropped (quality_classifier_low); 0: off")
    max_chars: int | None = Field(10_000, ge=1, description="characters of the text the model reads (newlines as "
                                  "spaces); None: the whole text")


class QualityClassifier(Stage[QualityClassifierConfig]):
    """Score each document with a fastText quality classifier you trained; drop those scoring below ``threshold``.

    Writes ``score_column`` = P(``positive_label``); see the module docstring.
    """

    name: ClassVar[str] = "quality_classifier"
    stateful: ClassVar[bool] = True
    writes: ClassVar[tuple[Column, ...]] = (
        Column("quality_score", "P(positive_label) of the classifier (0.0 for an empty text); the column is "
               "named by score_column", thresholds=("threshold",)),
    )
    drop_reasons: ClassVar[dict[str, str]] = {"quality_classifier_low": "score below threshold"}

    def columns(self) -> tuple[Column, ...]:
        return (replace(self.writes[0], name=self.config.score_column),)

    def __init__(self, config: QualityClassifierConfig | None = None, **params) -> None:
        super().__init__(config, **params)
        self.model = FastTextModel(self.config.model_path)

    def __call__(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        lines = (prepare_text(t, cfg.max_chars) for t in table.column("text").to_pylist())
        scores = self.model.label_prob(lines, cfg.positive_label)
        reasons = np.where(scores < cfg.threshold, "quality_classifier_low", None).tolist()
        table = set_column(table, cfg.score_column, pa.array(scores, type=pa.float64()))
        return set_drops(table, reasons)


# ------------------------------------------------------------------------------------------- training


def iter_texts(path: str | Path, *, text_field: str = "text",
               txt_unit: Literal["line", "file"] = "line") -> Iterator[str]:
    """Documents of one file: .txt (per line or whole file), .jsonl[.gz|.zst] or .parquet.

    Unreadable records (bad JSON, a missing or non-string field) are skipped and counted in a log line.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=[text_field])
        yield from (t for t in table.column(text_field).to_pylist() if isinstance(t, str))
        return
    if name.endswith(".txt"):
        text = path.read_text(encoding="utf-8", errors="replace")
        yield from ([text] if txt_unit == "file" else text.splitlines())
        return
    if name.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json.zst")):
        skipped = 0
        with _open_text(path) as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)[text_field]
                except (ValueError, KeyError, TypeError):
                    skipped += 1
                    continue
                if isinstance(value, str):
                    yield value
                else:
                    skipped += 1
        if skipped:
            log.warning("%s: skipped %d records without a string %r", path, skipped, text_field)
        return
    raise ValueError(f"unsupported file type for training text: {path} (.txt, .jsonl[.gz|.zst], .parquet)")


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    if path.name.endswith(".zst"):
        import zstandard

        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True),
                                encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _collect(globs: list[str], text_field: str, txt_unit: str, max_chars: int | None,
             max_docs: int | None) -> list[str]:
    files = sorted({p for g in globs for p in glob.glob(g, recursive=True) if Path(p).is_file()})
    if not files:
        raise FileNotFoundError(f"no file matches {globs}")
    docs: list[str] = []
    for f in files:
        for text in iter_texts(f, text_field=text_field, txt_unit=txt_unit):
            line = prepare_text(text, max_chars).strip()
            if line:
                docs.append(line)
                if max_docs is not None and len(docs) >= max_docs:
                    return docs
    return docs


def train_classifier(
    positive: list[str],
    negative: list[str],
    out: str,
    *,
    epoch: int = 5,
    lr: float = 0.1,
    wordNgrams: int = 2,  # noqa: N803 - fastText's own parameter name
    dim: int = 64,
    bucket: int = 500_000,
    min_count: int = 1,
    text_field: str = "text",
    txt_unit: Literal["line", "file"] = "line",
    labels: tuple[str, str] = ("positive", "negative"),
    holdout: float = 0.1,
    max_chars: int | None = 10_000,
    max_docs_per_class: int | None = None,
    seed: int = 0,
) -> dict:
    """Train a positive-vs-negative fastText classifier, save it to ``out``, report held-out metrics.

    ``positive``/``negative`` are glob lists. A ``holdout`` fraction of each class (shuffled with
    ``seed``) is kept out of training and scored. Returns counts, train and held-out accuracy, held-out
    precision/recall of the positive label, and the model path.
    """
    if not 0.0 <= holdout < 1.0:
        raise ValueError("holdout must be in [0, 1)")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    train_x: list[str] = []
    train_y: list[str] = []
    test_x: list[str] = []
    test_y: list[str] = []
    for globs, label in ((positive, labels[0]), (negative, labels[1])):
        docs = _collect(globs, text_field, txt_unit, max_chars, max_docs_per_class)
        order = rng.permutation(len(docs))
        n_test = int(round(holdout * len(docs)))
        for k, i in enumerate(order):
            (test_x if k < n_test else train_x).append(docs[i])
            (test_y if k < n_test else train_y).append(label)
    model = train_supervised(train_x, train_y, dim=dim, epoch=epoch, lr=lr, word_ngrams=wordNgrams,
                             bucket=bucket, min_count=min_count, seed=seed)
    path = save_model(model, out)
    loaded = FastTextModel(path)  # evaluate the saved file, as the stage will use it
    report = {"model": str(path), "labels": list(labels), "train_docs": len(train_x),
              "heldout_docs": len(test_x), "train_accuracy": _accuracy(loaded, train_x, train_y)}
    if test_x:
        pred = loaded.top1(test_x)[0]
        truth = np.array(test_y)
        guess = np.array([p or "" for p in pred])
        tp = int(np.sum((guess == labels[0]) & (truth == labels[0])))
        report.update(
            heldout_accuracy=float(np.mean(guess == truth)),
            heldout_precision=tp / max(1, int(np.sum(guess == labels[0]))),
            heldout_recall=tp / max(1, int(np.sum(truth == labels[0]))),
        )
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report


def _accuracy(model: FastTextModel, lines: list[str], labels: list[str], limit: int = 20_000) -> float:
    """Accuracy on up to ``limit`` lines spread evenly over the list (both classes)."""
    if not lines:
        return 0.0
    idx = np.unique(np.linspace(0, len(lines) - 1, min(len(lines), limit)).astype(np.int64))
    pred = model.top1(lines[i] for i in idx)[0]
    return float(np.mean([pred[k] == labels[i] for k, i in enumerate(idx)]))
