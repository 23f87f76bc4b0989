"""quality_classifier and train_classifier: a tiny model trained on two real text sources of this machine."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from curator.stages.classifier import QualityClassifier, iter_texts, train_classifier
from curator.stages.fasttext_model import FastTextModel, fnv_hashes, save_model, train_supervised

LICENSES = Path("/usr/share/common-licenses")
DOCS = Path("/usr/share/doc")


def _license_lines(limit: int) -> list[str]:
    lines = []
    for f in sorted(LICENSES.iterdir()):
        if f.is_file():
            lines += [ln.strip() for ln in f.read_text(errors="replace").splitlines() if len(ln.strip()) > 30]
    return lines[:limit]


def _changelog_lines(limit: int) -> list[str]:
    lines: list[str] = []
    for f in sorted(DOCS.glob("*/changelog.Debian.gz")):
        with gzip.open(f, "rt", errors="replace") as fh:
            lines += [ln.strip() for ln in fh if len(ln.strip()) > 30]
        if len(lines) >= limit:
            break
    return lines[:limit]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    lic, chg = _license_lines(1500), _changelog_lines(1500)
    if len(lic) < 500 or len(chg) < 500:
        pytest.skip("needs /usr/share/common-licenses and Debian changelogs")
    root = tmp_path_factory.mktemp("corpus")
    # positives as .txt (one document per line) and .jsonl.zst; negatives as .jsonl.gz and .parquet
    (root / "pos").mkdir()
    (root / "neg").mkdir()
    half = len(lic) // 2
    (root / "pos" / "a.txt").write_text("\n".join(lic[:half]) + "\n")
    (root / "pos" / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(
        "".join(json.dumps({"text": t}) + "\n" for t in lic[half:]).encode()))
    half = len(chg) // 2
    with gzip.open(root / "neg" / "a.jsonl.gz", "wt") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in chg[:half])
    pq.write_table(pa.table({"text": chg[half:]}), root / "neg" / "b.parquet")
    return root


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "quality.bin"
    report = train_classifier([str(corpus / "pos" / "*")], [str(corpus / "neg" / "*")], str(out),
                              epoch=5, dim=16, bucket=50_000, holdout=0.2, seed=1,
                              labels=("license", "changelog"))
    return out, report


def test_trained_model_separates_held_out_lines(trained):
    out, report = trained
    assert out.is_file()
    assert report["heldout_docs"] >= 400 and report["train_docs"] >= 1600
    assert report["heldout_accuracy"] > 0.9  # chance is 0.5
    assert report["heldout_precision"] > 0.85 and report["heldout_recall"] > 0.85


def test_training_is_deterministic(corpus, trained, tmp_path):
    out, report = trained
    again = tmp_path / "again.bin"
    report2 = train_classifier([str(corpus / "pos" / "*")], [str(corpus / "neg" / "*")], str(again),
                               epoch=5, dim=16, bucket=50_000, holdout=0.2, seed=1,
                               labels=("license", "changelog"))
    assert again.read_bytes() == out.read_bytes()
    assert report2["heldout_accuracy"] == report["heldout_accuracy"]


def test_stage_scores_and_drops(trained):
    out, _ = trained
    stage = QualityClassifier(model_path=str(out), positive_label="license", threshold=0.5)
    texts = ["THE SOFTWARE IS PROVIDED WITHOUT WARRANTY OF ANY KIND; you may redistribute it under the terms "
             "of the GNU General Public License as published by the Free Software Foundation.",
             "* New upstream release. Fix build failure with gcc-14 (Closes: #1075123). Bump Standards.",
             "", None]
    t = stage(pa.table({"text": pa.array(texts, pa.string())}))
    scores = t.column("quality_score").to_pylist()
    assert scores[0] > 0.8 and scores[1] < 0.2
    assert scores[2:] == [0.0, 0.0]
    assert t.column("drop_reason").to_pylist() == [None] + ["quality_classifier_low"] * 3


def test_numpy_forward_matches_fasttext_predict(tmp_path):
    """Our saved .bin is read by fastText's own loader and gives the probabilities we compute."""
    rng = np.random.default_rng(0)
    vocab = ["alpha", "beta", "gamma", "delta", "épsilon", "ζήτα", "日本", "x"]
    lines = [" ".join(rng.choice(vocab, size=rng.integers(1, 12))) for _ in range(300)]
    labels = ["a" if ("alpha" in ln or "日本" in ln) else "b" for ln in lines]
    model = train_supervised(lines, labels, dim=8, word_ngrams=3, bucket=997, epoch=3, seed=3)
    path = save_model(model, tmp_path / "m.bin")
    loaded = FastTextModel(path)
    probe = ["alpha beta", "gamma delta épsilon", "unknown words only", "日本 ζήτα x x"]
    ours = model.predict_proba(probe)
    theirs = np.array([[dict(loaded.predict(p, -1)).get(lab, 0.0) for lab in model.labels] for p in probe])
    np.testing.assert_allclose(theirs, ours, atol=1e-4)  # fastText adds 1e-5 inside its log


def test_fnv_hash_matches_known_values():
    # FNV-1a 32-bit of "a" is 0xe40c292c; fastText sign-extends bytes >= 0x80 before the xor
    assert fnv_hashes([b"a"]).tolist() == [0xE40C292C]
    assert fnv_hashes([b""]).tolist() == [2166136261]
    h = 2166136261
    for byte in "é".encode():
        h = ((h ^ (byte - 256 if byte > 127 else byte) & 0xFFFFFFFF) * 16777619) & 0xFFFFFFFF
    assert fnv_hashes(["é".encode()]).tolist() == [h]


def test_iter_texts_formats_and_bad_records(tmp_path, caplog):
    (tmp_path / "d.txt").write_text("one\ntwo\n")
    assert list(iter_texts(tmp_path / "d.txt")) == ["one", "two"]
    assert list(iter_texts(tmp_path / "d.txt", txt_unit="file")) == ["one\ntwo\n"]
    (tmp_path / "e.jsonl").write_text('{"text": "ok"}\nnot json\n{"other": 1}\n{"text": 5}\n\n')
    assert list(iter_texts(tmp_path / "e.jsonl")) == ["ok"]
    assert "skipped 3" in caplog.text
    with pytest.raises(ValueError, match="unsupported"):
        list(iter_texts(tmp_path / "x.csv"))


def test_train_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        train_classifier([str(tmp_path / "none*")], [str(tmp_path / "none*")], str(tmp_path / "m.bin"))
    with pytest.raises(ValueError):
        train_supervised(["a"], ["x", "y"])
    with pytest.raises(ValueError):
        QualityClassifier(model_path=str(tmp_path / "missing.bin"), threshold=0.5, unknown=1)
