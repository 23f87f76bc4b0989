"""Run statistics, defined once: the shape of ``stats.json`` and of the manifest's counts.

The counts are authoritative because they come from the records the tasks write when they finish
(``curator.tasks``): each unit's reader counts and per-stage counts are summed once per finished unit, so
a task that Ray retried after a worker died is never counted twice. While a run goes on, the driver adds
the partial counts that unfinished tasks report, for live progress only.

``stats.json``::

    {"name": ..., "run_id": ..., "status": "running" | "succeeded" | "failed", "error": null,
     "started_at": 1.7e9, "updated_at": ..., "finished_at": null, "phase": "phase 1 of 2: fuzzy_dedup",
     "units": {"total": 3, "done": 1, "resumed": 0},
     "inputs": {"files": 3, "files_done": 1, "records": 1200, "bytes": 5000000, "skipped": {"non_html": 12}},
     "stages": [{"index": 0, "name": "html_to_text", "kind": "map", "docs_in": 1200, "docs_out": 1100,
                 "chars_in": ..., "chars_out": ..., "drops": {"empty_extraction": 100}, "seconds": 12.5}],
     "output": {"docs": 0, "rejected": 0, "files": 0}, "errors": []}
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field


class InputCounts(BaseModel):
    files: int = 0
    files_done: int = 0
    records: int = 0  # documents the readers produced
    bytes: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)  # records the readers skipped, by reason


class StageStats(BaseModel):
    index: int
    name: str
    kind: Literal["map", "global"] = "map"
    docs_in: int = 0
    docs_out: int = 0
    chars_in: int = 0
    chars_out: int = 0
    drops: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0

    def add(self, delta: dict[str, Any]) -> None:
        for key in ("docs_in", "docs_out", "chars_in", "chars_out"):
            setattr(self, key, getattr(self, key) + int(delta.get(key, 0)))
        self.seconds += float(delta.get("seconds", 0.0))
        self.drops = dict(Counter(self.drops) + Counter(delta.get("drops", {})))


class UnitCounts(BaseModel):
    total: int = 0
    done: int = 0
    resumed: int = 0  # finished by an earlier run and reused


class OutputCounts(BaseModel):
    docs: int = 0
    rejected: int = 0
    files: int = 0


class RunStats(BaseModel):
    name: str
    run_id: str = ""
    status: Literal["running", "succeeded", "failed"] = "running"
    error: str | None = None
    started_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    finished_at: float | None = None
    phase: str = ""
    units: UnitCounts = Field(default_factory=UnitCounts)
    inputs: InputCounts = Field(default_factory=InputCounts)
    stages: list[StageStats] = Field(default_factory=list)
    output: OutputCounts = Field(default_factory=OutputCounts)
    errors: list[str] = Field(default_factory=list)

    @classmethod
    def empty(cls, name: str, stages: Iterable[tuple[str, bool]], n_files: int, run_id: str = "") -> RunStats:
        return cls(name=name, run_id=run_id, inputs=InputCounts(files=n_files),
                   stages=[StageStats(index=i, name=n, kind="global" if g else "map")
                           for i, (n, g) in enumerate(stages)])

    def add_record(self, record: dict[str, Any]) -> None:
        """Add one finished task's record (reader counts of phase 0, per-stage counts, errors)."""
        read = record.get("read")
        if read is not None:
            self.inputs.files_done += 1
            self.inputs.records += int(read.get("docs", read.get("records", 0)))
            self.inputs.bytes += int(read.get("bytes", 0))
            self.inputs.skipped = dict(Counter(self.inputs.skipped) + Counter(read.get("skipped", {})))
        self.add_stages(record.get("stages", {}))
        self.errors.extend(record.get("errors", [])[: max(0, 100 - len(self.errors))])

    def add_stages(self, stages: dict[str, dict[str, Any]]) -> None:
        for index, delta in stages.items():
            self.stages[int(index)].add(delta)

    def drops_by_stage(self) -> dict[str, dict[str, int]]:
        """{stage name: {reason: docs}} for the stages that dropped anything (names repeat-safe)."""
        out: dict[str, dict[str, int]] = {}
        for st in self.stages:
            if st.drops:
                into = out.setdefault(st.name, {})
                for reason, n in st.drops.items():
                    into[reason] = into.get(reason, 0) + n
        return out

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def funnel_rows(stats: dict[str, Any] | RunStats) -> list[dict[str, Any]]:
    """The per-stage funnel as rows (first the reader), for the CLI, the card and the report."""
    s = stats if isinstance(stats, RunStats) else RunStats.model_validate(stats)
    rows = [{"stage": "(read)", "docs_in": None, "docs_out": s.inputs.records, "chars_out": None,
             "drops": dict(s.inputs.skipped), "seconds": None}]
    rows += [{"stage": st.name, "docs_in": st.docs_in, "docs_out": st.docs_out, "chars_in": st.chars_in,
              "chars_out": st.chars_out, "drops": dict(st.drops), "seconds": st.seconds} for st in s.stages]
    return rows


def drops_text(drops: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(drops.items()))


def funnel_text(stats: dict[str, Any] | RunStats) -> str:
    lines = [f"{'stage':<22}{'docs in':>10}{'docs out':>10}{'chars out':>14}  drops"]
    for r in funnel_rows(stats):
        docs_in = "" if r["docs_in"] is None else r["docs_in"]
        chars = "" if r["chars_out"] is None else r["chars_out"]
        lines.append(f"{r['stage']:<22}{docs_in:>10}{r['docs_out']:>10}{chars:>14}  {drops_text(r['drops'])}")
    return "\n".join(lines)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to a local ``path`` through a temporary file and a rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_stats(out_dir: str | Path) -> dict[str, Any] | None:
    path = Path(out_dir) / "stats.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
