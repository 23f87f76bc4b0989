"""Arrow reader: a Hugging Face ``datasets`` folder (save_to_disk) and IPC files read as documents."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from curator.readers import ReadStats, detect_format, expand_inputs, read_file
from curator.schema import make_id


def _rows(tables):
    return [r for t in tables for r in t.to_pylist()]


def test_a_datasets_folder_reads_every_split_file(tmp_path):
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["alpha doc", "beta doc", None], "url": ["u1", "u2", "u3"]}),
        "test": datasets.Dataset.from_dict({"text": ["gamma doc"], "url": ["u4"]}),
    })
    dd.save_to_disk(str(tmp_path / "ds"))
    files = expand_inputs([str(tmp_path / "ds")])
    assert files and all(f.endswith(".arrow") and detect_format(f) == "arrow" for f in files)
    stats = ReadStats()
    rows = []
    for f in files:
        rows += _rows(read_file(f, url_column="url", batch_size=1, stats=stats))
    assert sorted(r["text"] for r in rows) == ["alpha doc", "beta doc", "gamma doc"]
    assert {r["source"] for r in rows} == {"hf"}
    assert stats.skipped == {"missing_text": 1}
    train = [f for f in files if "/train/" in f][0]
    first = _rows(read_file(train, url_column="url"))[0]
    assert first["id"] == make_id(train, 0) and first["url"] == "u1"


def test_ipc_file_format_and_bad_text_column_counted(tmp_path):
    good = tmp_path / "good.arrow"
    table = pa.table({"body": ["one", "two", "three"], "k": ["a", "b", "c"]})
    with ipc.new_file(str(good), table.schema) as w:
        w.write_table(table, max_chunksize=2)
    rows = _rows(read_file(str(good), text_column="body", id_column="k", source="mine"))
    assert [(r["text"], r["id"], r["source"]) for r in rows] == [
        ("one", make_id(str(good), "a"), "mine"), ("two", make_id(str(good), "b"), "mine"),
        ("three", make_id(str(good), "c"), "mine")]
    bad = tmp_path / "bad.arrow"
    t = pa.table({"text": pa.array([[1], [2]], pa.list_(pa.int64()))})
    with ipc.new_stream(str(bad), t.schema) as w:
        w.write_table(t)
    stats = ReadStats()
    assert _rows(read_file(str(bad), stats=stats)) == []
    assert stats.skipped == {"bad_text_column": 2}
    junk = tmp_path / "junk.arrow"
    junk.write_bytes(b"not arrow at all" * 10)
    stats = ReadStats()
    assert _rows(read_file(str(junk), stats=stats)) == [] and stats.skipped == {"corrupt_file": 1}
