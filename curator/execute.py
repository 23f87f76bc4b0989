"""Ray Data glue: the input datasource (one read task per file) and stage wrappers.

Dropped documents are not removed between stages: they travel on with ``drop_reason``/``drop_stage`` set
(their text cleared unless sampled into ``rejected/``), so the writer counts every drop exactly and routes
it to ``rejected/``. Each wrapper hands a stage only the live rows, times it, and reports a stats delta to
the run's ``StatsCollector`` actor.
"""

from __future__ import annotations

import fnmatch
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from curator import registry
from curator.readers import read_file
from curator.readers.base import ReadStats
from curator.schema import DROP_REASON, DROP_STAGE, make_id
from curator.stats import stage_delta

MANAGED = (DROP_REASON, DROP_STAGE)


def _chars(table: pa.Table) -> int:
    if "text" not in table.column_names or len(table) == 0:
        return 0
    return int(pc.sum(pc.utf8_length(table.column("text"))).as_py() or 0)


def split_live(table: pa.Table) -> tuple[pa.Table, pa.Table | None]:
    """(live rows without the managed columns, already-dropped rows or None)."""
    if DROP_REASON not in table.column_names:
        return table, None
    dead_mask = pc.is_valid(table.column(DROP_REASON))
    dead = table.filter(dead_mask)
    live = table.filter(pc.invert(dead_mask)).drop_columns([c for c in MANAGED if c in table.column_names])
    return live, (dead if len(dead) else None)


def _keep_in_rejected(ids: list[str], sample: float, seed: int) -> list[bool]:
    if sample >= 1.0:
        return [True] * len(ids)
    if sample <= 0.0:
        return [False] * len(ids)
    limit = int(sample * 2**32)
    return [int(make_id(str(seed), i)[:8], 16) < limit for i in ids]


def tag_drops(out: pa.Table, stage_name: str, rejected_sample: float, seed: int) -> tuple[pa.Table, Counter]:
    """Set ``drop_stage`` on rows this stage dropped, clear the text of rows sampled out of rejected/,
    and count drops per reason."""
    if DROP_REASON not in out.column_names:
        return out, Counter()
    reasons = out.column(DROP_REASON)
    dropped = pc.is_valid(reasons)
    n_dropped = int(pc.sum(dropped).as_py() or 0)
    if n_dropped == 0:
        return out.drop_columns([c for c in MANAGED if c in out.column_names]), Counter()
    counts = Counter(r for r in reasons.to_pylist() if r is not None)
    stage_col = pc.if_else(dropped, pa.scalar(stage_name), pa.scalar(None, pa.string()))
    if DROP_STAGE in out.column_names:
        out = out.drop_columns([DROP_STAGE])
    out = out.append_column(DROP_STAGE, stage_col)
    if rejected_sample < 1.0:
        keep = pa.array(_keep_in_rejected(out.column("id").to_pylist(), rejected_sample, seed))
        clear = pc.and_(dropped, pc.invert(keep))
        text = pc.if_else(clear, pa.scalar(None, pa.string()), out.column("text"))
        out = out.set_column(out.schema.get_field_index("text"), "text", text)
    return out, counts


def merge(out: pa.Table, dead: pa.Table | None) -> pa.Table:
    if dead is None:
        return out
    if len(out) == 0:
        return dead
    return pa.concat_tables([out, dead], promote_options="permissive")


class StageRunner:
    """Runs one map stage on a batch. Through ``apply_stage`` it is a cached per-process object (a stateful
    stage's model loads once per worker process, never per batch); as a Ray actor class it serves the pools
    a spec asks for with ``concurrency`` or ``num_gpus``."""

    def __init__(self, name: str, params: dict[str, Any], index: int, stats: Any,
                 rejected_sample: float, seed: int, sources: list[str] | None = None) -> None:
        cls = registry.get(name)
        self.stage = cls(cls.Config(**params))
        self.name, self.index, self.stats = name, index, stats
        self.rejected_sample, self.seed, self.sources = rejected_sample, seed, sources

    def __call__(self, table: pa.Table) -> pa.Table:
        live, dead = split_live(table)
        if len(live) == 0:
            return table
        # documents outside ``sources`` pass beside the stage; they count as in and out of it unchanged
        docs_in, chars_in = len(live), _chars(live)
        passthrough_chars = 0
        if self.sources is not None:
            mask = pa.array([any(fnmatch.fnmatchcase(s or "", p) for p in self.sources)
                             for s in live.column("source").to_pylist()], pa.bool_())
            passthrough = live.filter(pc.invert(mask))
            live = live.filter(mask)
            if len(passthrough):
                passthrough_chars = _chars(passthrough)
                dead = merge(passthrough, dead)
        if len(live) == 0:
            self._report(docs_in, docs_in, chars_in, chars_in, Counter(), 0.0)
            return table
        t0 = time.perf_counter()
        out = self.stage(live)
        seconds = time.perf_counter() - t0
        if len(out) != len(live):
            raise RuntimeError(f"stage {self.name} changed the number of rows ({len(live)} -> {len(out)}); "
                               "stages must mark drops with drop_reason, not remove rows")
        out, drops = tag_drops(out, self.name, self.rejected_sample, self.seed)
        live_after, _ = split_live(out)
        self._report(docs_in, docs_in - sum(drops.values()), chars_in, _chars(live_after) + passthrough_chars,
                     drops, seconds)
        return merge(out, dead)


    def _report(self, docs_in: int, docs_out: int, chars_in: int, chars_out: int, drops: Counter,
                seconds: float) -> None:
        if self.stats is not None:
            self.stats.add_stage.remote(self.index, stage_delta(docs_in, docs_out, chars_in, chars_out, drops,
                                                                seconds))


_RUNNERS: dict[tuple, StageRunner] = {}


def apply_stage(table: pa.Table, *, name: str, params: dict[str, Any], index: int, stats: Any,
                rejected_sample: float, seed: int, sources: list[str] | None = None) -> pa.Table:
    key = (name, index, repr(sorted(params.items())), id(stats), repr(sources))
    runner = _RUNNERS.get(key)
    if runner is None:
        runner = _RUNNERS[key] = StageRunner(name, params, index, stats, rejected_sample, seed, sources)
    return runner(table)


class InputFiles(Datasource):
    """One Ray Data read task per input file (``path``, ``input`` index into the spec's inputs).

    A map over a table of paths would not do: Ray Data fuses it with the first stage's map and bundles
    input rows up to that stage's batch size, so every file of a small run was read in a single task.
    """

    def __init__(self, files: list[dict[str, Any]], inputs: list[dict[str, Any]], batch_size: int,
                 max_doc_bytes: int, stats: Any) -> None:
        self.files, self.inputs, self.batch_size = files, inputs, batch_size
        self.max_doc_bytes, self.stats = max_doc_bytes, stats

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        return [ReadTask(partial(self.read, f["path"], f["input"]),
                         BlockMetadata(num_rows=None, size_bytes=None, input_files=[f["path"]], exec_stats=None))
                for f in self.files]

    def read(self, path: str, index: int) -> Iterator[pa.Table]:
        """Core-schema tables of one file; its record and skip counts go to the stats actor at the end."""
        spec = self.inputs[index]
        rs = ReadStats(path=path)
        emitted = 0
        for table in read_file(path, format=spec.get("format"), source=spec.get("source"),
                               batch_size=self.batch_size, max_doc_bytes=self.max_doc_bytes, stats=rs,
                               **spec.get("options", {})):
            emitted += len(table)
            yield table
        if self.stats is not None:
            self.stats.add_input.remote(max(rs.records, emitted), rs.bytes, dict(rs.skipped))
