"""One unit task without Ray: counting, routing, rejected sampling, per-document isolation of failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curator import registry
from curator.plan import Unit, build_plan
from curator.spec import validate_spec
from curator.stages.base import Stage, StageConfig
from curator.table import set_drops
from curator.tasks import Output, StageFailed, UnitTask, execute_unit


class BoomConfig(StageConfig):
    word: str = "boom"


class Boom(Stage[BoomConfig]):
    """Raises on documents holding ``word``; drops documents holding "drop"."""

    name: ClassVar[str] = "boom"

    def __call__(self, table: pa.Table) -> pa.Table:
        texts = table.column("text").to_pylist()
        if any(self.config.word in t for t in texts):
            raise ValueError(f"cannot handle {self.config.word!r}")
        return set_drops(table, ["dropped" if "drop" in t else None for t in texts])


class Shrink(Stage[BoomConfig]):
    """Removes rows (forbidden)."""

    name: ClassVar[str] = "shrink"

    def __call__(self, table: pa.Table) -> pa.Table:
        return table.slice(0, 1)


@pytest.fixture(autouse=True)
def _test_stages():
    found = registry.available()
    found["boom"] = f"{__name__}:Boom"
    found["shrink"] = f"{__name__}:Shrink"
    registry.get.cache_clear()
    yield
    found.pop("boom")
    found.pop("shrink")
    registry.get.cache_clear()


def _jsonl(path: Path, texts: list[str], source: str | None = None) -> str:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return str(path)


def _task(tmp_path: Path, stages: list[dict], texts: list[str], **out) -> UnitTask:
    path = _jsonl(tmp_path / "in.jsonl", texts)
    spec = validate_spec({"name": "t", "inputs": [{"path": path, "source": "web"}], "stages": stages,
                          "output": {"path": str(tmp_path / "out"), **out.pop("output", {})}, **out})
    plan = build_plan(spec, [Unit(0, path, 0, {"size": 1})])
    phase = plan.phases[0]
    o = Output.of(spec, str(tmp_path / "out"))
    return UnitTask(phase=0, label="00000", key=plan.first_key(plan.units[0]), units=(0,), maps=phase.maps,
                    final=phase.final, out=o, input=(path, spec.inputs[0].model_dump()))


def _rows(tmp_path: Path, rec: dict, subset: str) -> list[dict]:
    return [r for f in rec["files"] if f["subset"] == subset
            for r in pq.read_table(tmp_path / "out" / f["path"]).to_pylist()]


def test_counts_routing_and_the_record(tmp_path):
    texts = ["short", "a long enough document here", "tiny", "another long enough document"]
    task = _task(tmp_path, [{"stage": "min_length", "min_chars": 10}], texts, ray={"batch_size": 3})
    rec = execute_unit(task)
    st = rec["stages"]["0"]
    assert (st["docs_in"], st["docs_out"], st["drops"]) == (4, 2, {"too_short": 2})
    assert st["chars_in"] == sum(map(len, texts)) and st["chars_out"] == len(texts[1]) + len(texts[3])
    assert [r["text"] for r in _rows(tmp_path, rec, "data")] == [texts[1], texts[3]]
    rejected = _rows(tmp_path, rec, "rejected")
    assert [(r["text"], r["drop_reason"], r["drop_stage"]) for r in rejected] == \
        [("short", "too_short", "min_length"), ("tiny", "too_short", "min_length")]
    assert "_rowkey" not in pq.read_schema(tmp_path / "out" / rec["files"][0]["path"]).names
    assert rec["read"]["docs"] == 4 and rec["rejected"] == 2
    assert json.loads((tmp_path / "out" / task.record_path).read_text()) == rec


def test_already_dropped_rows_bypass_later_stages_and_sources_pass_beside(tmp_path):
    texts = ["aa", "bbbbbb", "cccccccccccc", "drop me please"]
    task = _task(tmp_path, [{"stage": "min_length", "min_chars": 3}, {"stage": "boom", "word": "zzz"},
                            {"stage": "min_length", "min_chars": 100, "sources": ["other*"]}], texts)
    rec = execute_unit(task)
    s0, s1, s2 = (rec["stages"][str(i)] for i in range(3))
    assert (s0["docs_in"], s0["docs_out"]) == (4, 3)
    assert (s1["docs_in"], s1["docs_out"], s1["drops"]) == (3, 2, {"dropped": 1})
    assert (s2["docs_in"], s2["docs_out"], s2["drops"]) == (2, 2, {})  # source "web" is not "other*"
    assert sorted(r["text"] for r in _rows(tmp_path, rec, "data")) == ["bbbbbb", "cccccccccccc"]


@pytest.mark.parametrize("sample,written", [(1.0, 5), (0.0, 0)])
def test_rejected_sample_counts_everything_writes_the_sample(tmp_path, sample, written):
    task = _task(tmp_path, [{"stage": "min_length", "min_chars": 10}], ["x"] * 5 + ["long enough text"],
                 output={"rejected_sample": sample})
    rec = execute_unit(task)
    assert rec["rejected"] == 5 and len(_rows(tmp_path, rec, "rejected")) == written


def test_a_stage_failing_on_one_document_costs_only_that_document(tmp_path):
    texts = ["fine one", "this one goes boom", "fine two", "drop this"]
    rec = execute_unit(_task(tmp_path, [{"stage": "boom"}], texts, ray={"batch_size": 10}))
    assert rec["stages"]["0"]["drops"] == {"stage_error": 1, "dropped": 1}
    assert [r["text"] for r in _rows(tmp_path, rec, "data")] == ["fine one", "fine two"]
    bad = [r for r in _rows(tmp_path, rec, "rejected") if r["drop_reason"] == "stage_error"]
    assert [r["text"] for r in bad] == ["this one goes boom"]
    assert any("cannot handle 'boom'" in e for e in rec["errors"])


def test_on_error_fail_names_the_stage_and_the_file(tmp_path):
    task = _task(tmp_path, [{"stage": "boom"}], ["boom"], on_error="fail")
    with pytest.raises(StageFailed, match=r"stage boom \(stages\[0\]\) failed on .*in\.jsonl: ValueError"):
        execute_unit(task)
    assert not (tmp_path / "out" / task.record_path).exists()


def test_a_stage_that_removes_rows_fails_the_task(tmp_path):
    with pytest.raises(StageFailed, match="changed the number of rows"):
        execute_unit(_task(tmp_path, [{"stage": "shrink"}], ["a", "b"]))


def test_a_reader_that_raises_keeps_the_documents_read_before(tmp_path, monkeypatch):
    import curator.tasks as tasks

    def failing(path, **kwargs):
        yield pa.table({"id": ["1", "2"], "text": ["one", "two"], "source": ["s", "s"], "url": [None, None],
                        "meta": ["{}", "{}"]})
        raise OSError("disk went away")

    monkeypatch.setattr(tasks, "read_file", failing)
    rec = execute_unit(_task(tmp_path, [], ["ignored"]))
    assert [r["text"] for r in _rows(tmp_path, rec, "data")] == ["one", "two"]
    assert rec["read"]["skipped"] == {"read_error": 1} and "disk went away" in rec["errors"][0]


def test_limit_reads_the_first_documents_only(tmp_path):
    rec = execute_unit(_task(tmp_path, [], [f"doc {i}" for i in range(10)], limit=3, ray={"batch_size": 2}))
    assert [r["text"] for r in _rows(tmp_path, rec, "data")] == ["doc 0", "doc 1", "doc 2"]
    assert rec["read"]["docs"] == 3


def test_the_same_task_twice_writes_the_same_bytes(tmp_path):
    texts = [f"document number {i} " * (i % 7 + 1) for i in range(200)]
    task = _task(tmp_path, [{"stage": "min_length", "min_chars": 40}], texts, output={"shard_size_mb": 0.003})
    first = execute_unit(task)
    second = execute_unit(task)
    assert len(first["files"]) > 2
    assert first["files"] == second["files"]
