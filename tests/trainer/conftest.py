"""Fixtures for the trainer tests: tiny real-text job folders and a small tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trainer.tokenizer import train_tokenizer

LICENSES = Path("/usr/share/common-licenses")


def license_paragraphs(limit: int = 400) -> list[str]:
    paras = []
    for f in sorted(LICENSES.iterdir()):
        if not f.is_file():
            continue
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        paras += [p.strip() for p in text.split("\n\n") if len(p.strip()) > 60]
    return paras[:limit]


def write_job(root: Path, train: list[str], evals: list[str] | None) -> Path:
    """A curation job's output folder: train/ + eval/ (or data/ when evals is None) and a manifest."""
    if evals is None:
        (root / "data").mkdir(parents=True)
        pq.write_table(pa.table({"id": [f"d{i}" for i in range(len(train))], "text": train}),
                       root / "data" / "part-0.parquet", row_group_size=64)
    else:
        (root / "train").mkdir(parents=True)
        (root / "eval").mkdir(parents=True)
        half = len(train) // 2
        for k, part in enumerate((train[:half], train[half:])):
            pq.write_table(pa.table({"id": [f"t{k}-{i}" for i in range(len(part))], "text": part}),
                           root / "train" / f"part-{k}.parquet", row_group_size=64)
        pq.write_table(pa.table({"id": [f"e{i}" for i in range(len(evals))], "text": evals}),
                       root / "eval" / "part-0.parquet")
    (root / "manifest.json").write_text(json.dumps({"documents": len(train) + len(evals or [])}))
    return root


@pytest.fixture(scope="session")
def make_job():
    """The write_job function (a fixture, so test modules need not import this file)."""
    return write_job


@pytest.fixture(scope="session")
def paragraphs() -> list[str]:
    return license_paragraphs()


@pytest.fixture(scope="session")
def job(tmp_path_factory, paragraphs) -> Path:
    return write_job(tmp_path_factory.mktemp("job"), paragraphs[:360], paragraphs[360:400])


@pytest.fixture(scope="session")
def tokenizer_path(tmp_path_factory, paragraphs) -> Path:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    train_tokenizer(paragraphs, 400, path)
    return path
