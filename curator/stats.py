"""Run statistics: per-stage documents/characters in and out, drops per reason, reader skips.

Workers send small deltas to one ``StatsCollector`` Ray actor; the driver snapshots it every few seconds
into ``<out>/stats.json`` (written atomically), so the job service and ``curator inspect`` see live
progress without parsing logs. The file's shape::

    {"name": ..., "status": "running" | "succeeded" | "failed", "error": null,
     "started_at": 1.7e9, "updated_at": ..., "finished_at": null,
     "inputs": {"files": 3, "files_done": 1, "records": 1200, "bytes": 5000000,
                "skipped": {"non_html": 12}},
     "stages": [{"index": 0, "name": "html_to_text", "docs_in": 1200, "docs_out": 1100, "chars_in": ...,
                 "chars_out": ..., "drops": {"empty_extraction": 100}, "seconds": 12.5}],
     "output": {"docs": 0, "rejected": 0, "files": 0}}
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any


def stage_delta(docs_in: int, docs_out: int, chars_in: int, chars_out: int, drops: dict[str, int],
                seconds: float) -> dict[str, Any]:
    return {"docs_in": docs_in, "docs_out": docs_out, "chars_in": chars_in, "chars_out": chars_out,
            "drops": dict(drops), "seconds": seconds}


class RunStats:
    """Accumulates deltas. Plain class: used directly in tests and wrapped as a Ray actor in runs."""

    def __init__(self, name: str, stage_names: list[str], n_files: int) -> None:
        now = time.time()
        self.state: dict[str, Any] = {
            "name": name,
            "status": "running",
            "error": None,
            "started_at": now,
            "updated_at": now,
            "finished_at": None,
            "inputs": {"files": n_files, "files_done": 0, "records": 0, "bytes": 0, "skipped": {}},
            "stages": [
                {"index": i, "name": s, "docs_in": 0, "docs_out": 0, "chars_in": 0, "chars_out": 0,
                 "drops": {}, "seconds": 0.0}
                for i, s in enumerate(stage_names)
            ],
            "output": {"docs": 0, "rejected": 0, "files": 0},
        }

    def add_input(self, records: int, nbytes: int, skipped: dict[str, int], file_done: bool = True) -> None:
        inp = self.state["inputs"]
        inp["records"] += records
        inp["bytes"] += nbytes
        inp["files_done"] += int(file_done)
        inp["skipped"] = dict(Counter(inp["skipped"]) + Counter(skipped))

    def add_stage(self, index: int, delta: dict[str, Any]) -> None:
        st = self.state["stages"][index]
        for key in ("docs_in", "docs_out", "chars_in", "chars_out", "seconds"):
            st[key] += delta[key]
        st["drops"] = dict(Counter(st["drops"]) + Counter(delta["drops"]))

    def set_output(self, output: dict[str, Any]) -> None:
        self.state["output"] = output

    def finish(self, status: str, error: str | None = None) -> None:
        self.state["status"] = status
        self.state["error"] = error
        self.state["finished_at"] = time.time()

    def snapshot(self) -> dict[str, Any]:
        self.state["updated_at"] = time.time()
        return json.loads(json.dumps(self.state))


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename: readers never see half a file."""
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
