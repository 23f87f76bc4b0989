"""One unit of work of one phase, as a plain function (the driver runs it as a Ray task).

A task reads its documents (phase 0: one input file through its reader; later phases: the unit's rows
left by the previous phase, with the decisions of the global stages in between applied), runs the
phase's map stages batch by batch, and writes:

- the rows dropped in this phase to ``rejected/`` (where they are dropped; later phases never see them),
- the live rows either to the final shards (last phase: ``data/`` or ``train/`` + ``eval/``) or to the
  phase's work files under ``_curator/work/`` (the input of the global stages and of the next phase),
- its record (counts per stage, reader counts, files written) to ``_curator/work/p<phase>/``, last.

Everything it writes is named by its key, and every file appears whole or not at all, so a task that
is killed and run again (by Ray, or by a resumed run) writes exactly the same bytes. A bad input file
or a stage that raises on some documents costs only those documents: they are counted (``read_error``
skips, ``stage_error`` drops) and the rest of the file goes on, unless the spec says ``on_error: fail``.
"""

from __future__ import annotations

import fnmatch
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curator.card import summarize_table
from curator.decisions import apply_decisions, load_decisions
from curator.plan import KEY_CHARS, StagePlan
from curator.readers import read_file
from curator.readers.base import DEFAULT_MAX_DOC_BYTES, ReadStats
from curator.schema import DROP_REASON, DROP_STAGE, make_id
from curator.storage import Storage
from curator.table import MANAGED, concat, set_column, split_live, text_chars
from curator.writers.output import shard_name, work_name
from curator.writers.shards import ShardWriter, row_sizes

log = logging.getLogger("curator.tasks")

ROWKEY = "_rowkey"
SPLIT_COLUMN = "split"
STAGE_ERROR = "stage_error"
ROW_BITS = 32  # _rowkey = unit << ROW_BITS | row


class StageFailed(RuntimeError):
    """A stage (or a reader) failed with ``on_error: fail``; the message names the stage and the input."""


@dataclass(frozen=True)
class Output:
    """Where and how a task writes (the same for every task of a run)."""

    url: str
    shard_bytes: int
    compression: str
    rejected: bool
    rejected_sample: float
    seed: int
    batch_size: int
    on_error: str
    limit: int | None

    @classmethod
    def of(cls, spec: Any, url: str) -> Output:
        o = spec.output
        return cls(url, int(o.shard_size_mb * 1024 * 1024), o.compression, o.rejected, o.rejected_sample, spec.seed,
                   spec.ray.batch_size, spec.on_error, spec.limit)


@dataclass(frozen=True)
class Pending:
    """A global stage's decisions, to be applied to the unit's rows before the phase's map stages."""

    stage: StagePlan
    index: dict[str, Any]  # the stage's decision-file index (curator.decisions)


@dataclass(frozen=True)
class UnitTask:
    phase: int
    label: str  # file-name tag: the unit's index, or "g<n>" for a group of the last phase
    key: str
    units: tuple[int, ...]
    maps: tuple[StagePlan, ...]
    final: bool
    out: Output
    input: tuple[str, dict[str, Any]] | None = None  # phase 0: (path, the input's spec)
    id_key: str | None = None  # phase 0: the file's name in document ids (readers.id_key, set by the driver)
    bases: tuple[tuple[int, tuple[str, ...]], ...] = ()  # later phases: (unit, its work files)
    pending: tuple[Pending, ...] = ()

    @property
    def record_path(self) -> str:
        return record_path(self.phase, self.label, self.key)


def record_path(phase: int, label: str, key: str) -> str:
    return f"_curator/work/p{phase}/{label}.{key[:KEY_CHARS]}.json"


@dataclass
class Counts:
    docs_in: int = 0
    docs_out: int = 0
    chars_in: int = 0
    chars_out: int = 0
    drops: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"docs_in": self.docs_in, "docs_out": self.docs_out, "chars_in": self.chars_in,
                "chars_out": self.chars_out, "drops": dict(self.drops), "seconds": round(self.seconds, 6)}


def keep_in_rejected(ids: list[str], sample: float, seed: int) -> np.ndarray:
    """Which dropped documents are written to rejected/ (a seeded hash of the id, so stable)."""
    if sample >= 1.0:
        return np.ones(len(ids), bool)
    if sample <= 0.0:
        return np.zeros(len(ids), bool)
    limit = int(sample * 2**32)
    return np.array([int(make_id(str(seed), i)[:8], 16) < limit for i in ids], bool)


def tag_dead(dead: pa.Table, stage: str) -> pa.Table:
    """Rows a stage just dropped: ``drop_stage`` = the stage."""
    return set_column(dead, DROP_STAGE, pa.array([stage] * dead.num_rows, pa.string()))


class MapRunner:
    """Runs one map stage on live batches: source filter, row-count check, drop tagging, counting, and
    per-document isolation of a stage that raises."""

    def __init__(self, sp: StagePlan, counts: Counts, on_error: str, where: str) -> None:
        self.sp, self.counts, self.on_error, self.where = sp, counts, on_error, where
        self.errors: list[str] = []

    def __call__(self, live: pa.Table) -> tuple[pa.Table, pa.Table | None]:
        """(live rows after the stage, rows it dropped with drop_reason/drop_stage) of a live batch."""
        c = self.counts
        chars_in = text_chars(live)
        c.docs_in += live.num_rows
        c.chars_in += chars_in
        passthrough = None
        work = live
        if self.sp.sources is not None:
            mask = pa.array([any(fnmatch.fnmatchcase(s or "", p) for p in self.sp.sources)
                             for s in live.column("source").to_pylist()], pa.bool_())
            passthrough = live.filter(pc.invert(mask))
            work = live.filter(mask)
        if work.num_rows:
            t0 = time.perf_counter()
            out = self._run(work)
            c.seconds += time.perf_counter() - t0
            alive, dead = split_live(out)
        else:
            alive, dead = work, None
        if dead is not None and dead.num_rows:
            c.drops.update(dead.column(DROP_REASON).to_pylist())
            dead = tag_dead(dead, self.sp.name)
        else:
            dead = None
        alive = concat([alive, passthrough]) if passthrough is not None and passthrough.num_rows else alive
        if alive is None:
            alive = live.slice(0, 0)
        c.docs_out += alive.num_rows
        c.chars_out += text_chars(alive)
        return alive, dead

    def _run(self, table: pa.Table) -> pa.Table:
        stage = self.sp.instance()
        try:
            out = stage(table)
            self._check(table, out)
            return out
        except StageFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - isolate the documents it fails on
            if self.on_error == "fail":
                raise StageFailed(f"stage {self.sp.name} (stages[{self.sp.index}]) failed on {self.where}: "
                                  f"{type(exc).__name__}: {exc}") from exc
            if table.num_rows == 1:
                self._note(f"{type(exc).__name__}: {exc}")
                return set_column(table, DROP_REASON, pa.array([STAGE_ERROR], pa.string()))
            return concat([self._run(table.slice(i, 1)) for i in range(table.num_rows)])

    def _check(self, table: pa.Table, out: pa.Table) -> None:
        if out.num_rows != table.num_rows:
            raise StageFailed(f"stage {self.sp.name} changed the number of rows ({table.num_rows} -> "
                              f"{out.num_rows}); stages must mark drops with drop_reason, not remove rows")

    def _note(self, message: str) -> None:
        log.warning("stage %s failed on a document of %s: %s", self.sp.name, self.where, message)
        if len(self.errors) < 20:
            self.errors.append(f"{self.sp.name}: {self.where}: {message}")


class Writers:
    """The task's outputs: rejected rows, and live rows as final shards or as work files."""

    def __init__(self, storage: Storage, task: UnitTask) -> None:
        self.storage, self.task = storage, task
        self.out: dict[str, ShardWriter] = {}
        self.rejected: ShardWriter | None = None
        self.summary: dict[str, Any] = {}
        self.rejected_count = 0
        self.live_rows = 0
        self.live_bytes = 0
        self.next_row: dict[int, int] = {}

    def _writer(self, subset: str) -> ShardWriter:
        t = self.task
        if subset not in self.out:
            if t.final:
                self.out[subset] = ShardWriter(self.storage, subset, partial(shard_name, subset, t.label, key=t.key),
                                               t.out.shard_bytes, t.out.compression)
            else:
                self.out[subset] = ShardWriter(self.storage, "work", partial(work_name, t.phase, t.label, key=t.key),
                                               1 << 40, t.out.compression, group_bytes=8 << 20)
        return self.out[subset]

    def add_dead(self, dead: pa.Table | None) -> None:
        if dead is None or dead.num_rows == 0:
            return
        self.rejected_count += dead.num_rows
        if not self.task.out.rejected:
            return
        keep = keep_in_rejected(dead.column("id").to_pylist(), self.task.out.rejected_sample, self.task.out.seed)
        dead = dead.filter(pa.array(keep)).drop_columns([c for c in (ROWKEY,) if c in dead.column_names])
        if dead.num_rows == 0:
            return
        if self.rejected is None:
            t = self.task
            self.rejected = ShardWriter(self.storage, "rejected",
                                        partial(shard_name, "rejected", f"p{t.phase}-{t.label}", key=t.key),
                                        t.out.shard_bytes, t.out.compression)
        self.rejected.write(_with_managed_last(dead))

    def add_live(self, live: pa.Table) -> None:
        if live.num_rows == 0:
            return
        self.live_rows += live.num_rows
        self.live_bytes += int(row_sizes(live).sum())
        if not self.task.final:
            self._writer("work").write(_renumbered(live, self.next_row))
            return
        live = live.drop_columns([c for c in (ROWKEY, *MANAGED) if c in live.column_names])
        if SPLIT_COLUMN in live.column_names:
            labels = live.column(SPLIT_COLUMN)
            for name in sorted({v for v in labels.to_pylist() if v is not None}):
                self._final(str(name), live.filter(pc.equal(labels, name)))
        else:
            self._final("data", live)

    def _final(self, subset: str, table: pa.Table) -> None:
        self._writer(subset).write(table)
        summarize_table(self.summary, subset, table)

    def close(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(manifest entries of final and rejected files, work files)."""
        files: list[dict[str, Any]] = []
        work: list[dict[str, Any]] = []
        for _subset, w in sorted(self.out.items()):
            (files if self.task.final else work).extend(w.close())
        if self.rejected is not None:
            files.extend(self.rejected.close())
        return files, work

    def abort(self) -> None:
        for w in [*self.out.values(), self.rejected]:
            if w is not None:
                w.abort()


def _with_managed_last(dead: pa.Table) -> pa.Table:
    names = [c for c in dead.column_names if c not in MANAGED] + [c for c in MANAGED if c in dead.column_names]
    return dead.select(names)


def _renumbered(live: pa.Table, next_row: dict[int, int]) -> pa.Table:
    """Fresh ``_rowkey``s (unit << 32 | position in the unit's work rows) for the next phase."""
    units = (live.column(ROWKEY).to_numpy() >> ROW_BITS).astype(np.int64)
    keys = np.empty(len(units), np.int64)
    for u in np.unique(units):
        where = np.flatnonzero(units == u)
        start = next_row.get(int(u), 0)
        keys[where] = (int(u) << ROW_BITS) + start + np.arange(len(where), dtype=np.int64)
        next_row[int(u)] = start + len(where)
    return set_column(live, ROWKEY, pa.array(keys, pa.int64()))


def _read_input(task: UnitTask, read: ReadStats, errors: list[str], docs: list[int]) -> Iterator[pa.Table]:
    """Phase 0: the input file's batches, each row with its ``_rowkey``; a reader that raises ends the
    file (its documents so far are kept) as a counted ``read_error`` unless ``on_error: fail``."""
    assert task.input is not None
    path, inp = task.input
    unit = task.units[0]
    row = 0
    limit = task.out.limit
    try:
        for table in read_file(path, format=inp.get("format"), source=inp.get("source"),
                               batch_size=task.out.batch_size, max_doc_bytes=DEFAULT_MAX_DOC_BYTES, stats=read,
                               key=task.id_key, **inp.get("options", {})):
            if limit is not None and row + table.num_rows > limit:
                table = table.slice(0, limit - row)
            keys = (unit << ROW_BITS) + row + np.arange(table.num_rows, dtype=np.int64)
            row += table.num_rows
            docs[0] = row
            yield set_column(table, ROWKEY, pa.array(keys, pa.int64()))
            if limit is not None and row >= limit:
                return
    except Exception as exc:  # noqa: BLE001 - a bad file costs its own remaining documents only
        if task.out.on_error == "fail":
            raise StageFailed(f"reading {path} failed: {type(exc).__name__}: {exc}") from exc
        read.skip("read_error", None, f"{type(exc).__name__}: {exc}")
        errors.append(f"read {path}: {type(exc).__name__}: {exc}")


def _read_work(storage: Storage, task: UnitTask, counts: dict[int, Counts],
               dead_out: Writers) -> Iterator[pa.Table]:
    """Later phases: each member unit's work rows with the pending decisions applied (drops go to
    ``dead_out`` at once)."""
    for unit, files in task.bases:
        decisions = [(p, load_decisions(storage, p.index, unit)) for p in task.pending]
        for rel in files:
            with storage.open_read(rel) as f:
                pf = pq.ParquetFile(f)
                for batch in pf.iter_batches(batch_size=task.out.batch_size):
                    live = pa.Table.from_batches([batch])
                    for p, dec in decisions:
                        live, dead = apply_decisions(live, dec, p.stage, counts[p.stage.index])
                        dead_out.add_dead(dead)
                    yield live


def execute_unit(task: UnitTask, progress: Any = None) -> dict[str, Any]:
    """Run one unit task; write its files and its record; return the record."""
    storage = Storage(task.out.url)
    where = task.input[0] if task.input else f"unit(s) {','.join(map(str, task.units))} of phase {task.phase}"
    counts = {sp.index: Counts() for sp in (*[p.stage for p in task.pending], *task.maps)}
    runners = [MapRunner(sp, counts[sp.index], task.out.on_error, where) for sp in task.maps]
    read = ReadStats(path=task.input[0] if task.input else "")
    errors: list[str] = []
    writers = Writers(storage, task)
    attempt = uuid.uuid4().hex[:8]
    docs = [0]
    last_report = time.monotonic()
    try:
        batches = _read_input(task, read, errors, docs) if task.input else _read_work(storage, task, counts, writers)
        for live in batches:
            for runner in runners:
                if live.num_rows == 0:
                    break
                live, dead = runner(live)
                writers.add_dead(dead)
            writers.add_live(live)
            if progress is not None and time.monotonic() - last_report > 2.0:
                last_report = time.monotonic()
                _report(progress, task, attempt, counts, read)
        files, work = writers.close()
    except BaseException:
        writers.abort()
        raise
    for runner in runners:
        errors.extend(runner.errors)
    record = {
        "key": task.key, "phase": task.phase, "label": task.label, "units": list(task.units),
        "read": {"records": read.records, "docs": docs[0], "bytes": read.bytes, "skipped": dict(read.skipped)}
        if task.input else None,
        "stages": {str(i): c.as_dict() for i, c in counts.items()},
        "files": files, "work": work, "live_rows": writers.live_rows, "live_bytes": writers.live_bytes,
        "rejected": writers.rejected_count,
        "summary": writers.summary, "errors": errors[:50],
    }
    storage.write_json(task.record_path, record)
    if progress is not None:
        progress.done.remote(task.key)
    return record


def _report(progress: Any, task: UnitTask, attempt: str, counts: dict[int, Counts], read: ReadStats) -> None:
    try:
        progress.partial.remote(task.key, attempt, {str(i): c.as_dict() for i, c in counts.items()},
                                {"records": read.records, "skipped": dict(read.skipped)})
    except Exception:  # noqa: BLE001 - progress is best effort
        pass
