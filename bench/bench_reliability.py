"""Reliability benchmark: faults injected into real runs, and the cost of resuming after a crash.

One private Ray head (``tests/ray_head.py``); every run is ``curator run`` in its own process against it,
on ``--copies`` copies of the bundled WARC (each copy is an input file, so a unit of work) through the
commoncrawl-like recipe below. Faults, each compared with the clean run's manifest (rows and sha256 of every
file, in order):

- worker SIGKILL: the Ray worker running a unit task is killed while the run goes on;
- driver SIGKILL + resume: the ``curator run`` process group is killed once half of the units are done,
  then the same command runs again (the second run's wall time against the clean run's is the resume cost);
- progress actor killed: the run's live-progress actor is killed;
- disk full: the output is a tmpfs too small for it; the run must fail with a clear status; the tmpfs is
  then grown and the same command resumes.

Bad inputs: every file of ``tests/data/bad`` and a few crafted Parquet files run through the pipeline
together with a good file; the outcome (run status, skip reasons) is recorded.

Run (as root, nothing else running): ``python bench/bench_reliability.py --copies 8``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WARC = REPO / "examples" / "data" / "sample.warc.gz"
STAGES = [{"stage": "html_to_text"}, {"stage": "langid", "threshold": 0.3}, {"stage": "gopher_repetition"},
          {"stage": "fineweb_quality"}, {"stage": "exact_dedup"}, {"stage": "fuzzy_dedup"},
          {"stage": "split", "eval_fraction": 0.1}]


def spec_file(work: Path, name: str, inputs: str, out: Path, stages: list[dict] | None = None) -> Path:
    path = work / f"{name}.json"
    path.write_text(json.dumps({"name": name, "inputs": [{"path": inputs, "source": "commoncrawl"}],
                                "stages": STAGES if stages is None else stages,
                                "output": {"path": str(out), "shard_size_mb": 4},
                                "ray": {"concurrency": 2}}))
    return path


def start(spec: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "curator", "run", str(spec)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out = proc.communicate()[0].decode(errors="replace")
    return proc.returncode, out


def fingerprint(out: Path) -> list[tuple[str, int, str]]:
    manifest = json.loads((out / "manifest.json").read_text())
    return [(f["subset"], f["rows"], f["sha256"]) for f in manifest["files"]]


def records(out: Path) -> int:
    return len(list((out / "_curator" / "work" / "p0").glob("*.json")))


def wait(pred, timeout: float = 1800, step: float = 0.1) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--copies", type=int, default=8)
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "reliability.md"))
    args = p.parse_args()
    import ray
    from ray.util.state import list_actors, list_tasks

    from tests.ray_head import PrivateRayHead

    work = Path(tempfile.mkdtemp(prefix="rel-bench-"))
    data = work / "in"
    data.mkdir()
    for i in range(args.copies):
        shutil.copy(WARC, data / f"crawl-{i:02d}.warc.gz")
    inputs = str(data / "*.warc.gz")
    rows: list[dict] = []
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONPATH=str(REPO))
    with PrivateRayHead(work / "ray", num_cpus=args.cpus, env=env) as head:
        env["RAY_ADDRESS"] = head.gcs
        ray.init(address=head.gcs, log_to_driver=False)

        t0 = time.perf_counter()
        rc, log = finish(start(spec_file(work, "clean", inputs, work / "clean"), env))
        full_s = time.perf_counter() - t0
        assert rc == 0, log[-3000:]
        clean = fingerprint(work / "clean")
        print(f"clean run: {full_s:.1f} s, {len(clean)} files", flush=True)

        # worker SIGKILL
        proc = start(spec_file(work, "worker", inputs, work / "worker"), env)
        killed = []

        def running() -> bool:
            tasks = list_tasks(filters=[("name", "=", "execute_unit"), ("state", "=", "RUNNING")])
            pids = [t.worker_pid for t in tasks if t.worker_pid]
            if pids and records(work / "worker") >= 1:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return True
            return proc.poll() is not None

        wait(running)
        rc, log = finish(proc)
        rows.append({"fault": "worker SIGKILL mid-run", "injected": bool(killed), "run": "succeeded" if rc == 0
                     else f"failed ({log.strip().splitlines()[-1]})",
                     "identical": rc == 0 and fingerprint(work / "worker") == clean})

        # driver SIGKILL at half the units, then resume
        spec = spec_file(work, "driver", inputs, work / "driver")
        proc = start(spec, env)
        wait(lambda: records(work / "driver") >= args.copies // 2 or proc.poll() is not None, step=0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(5)  # a task that was running may still write its record before Ray reaps its worker
        done = records(work / "driver")
        t0 = time.perf_counter()
        rc, log = finish(start(spec, env))
        resume_s = time.perf_counter() - t0
        rows.append({"fault": f"driver SIGKILL after {done}/{args.copies} units, then resume", "injected": True,
                     "run": "succeeded" if rc == 0 else "failed",
                     "identical": rc == 0 and fingerprint(work / "driver") == clean,
                     "note": f"resume {resume_s:.1f} s = {resume_s / full_s:.0%} of a full run ({full_s:.1f} s)"})

        # progress actor killed
        proc = start(spec_file(work, "actor", inputs, work / "actor"), env)
        hit = []

        def actor() -> bool:
            alive = list_actors(filters=[("class_name", "=", "Progress"), ("state", "=", "ALIVE")])
            if alive:
                # the run is another process, so another job's namespace: look the actor up in its own
                ray.kill(ray.get_actor(alive[0].name, namespace=alive[0].ray_namespace), no_restart=True)
                hit.append(alive[0].name)
                return True
            return proc.poll() is not None

        wait(actor)
        rc, _ = finish(proc)
        rows.append({"fault": "progress actor killed", "injected": bool(hit), "run": "succeeded" if rc == 0
                     else "failed", "identical": rc == 0 and fingerprint(work / "actor") == clean})

        rows.append(disk_full(work, inputs, env, clean))
        bad = bad_inputs(work, env)
        ray.shutdown()
    write(args, rows, bad, full_s)
    shutil.rmtree(work, ignore_errors=True)


def disk_full(work: Path, inputs: str, env: dict, clean: list) -> dict:
    disk = work / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)]).returncode != 0:
        return {"fault": "disk full", "injected": False, "run": "not run (mount refused)", "identical": None}
    try:
        spec = spec_file(work, "disk", inputs, disk / "out")
        rc, log = finish(start(spec, env))
        status = json.loads((disk / "out" / "stats.json").read_text()).get("status")
        said = [line for line in log.splitlines() if line.startswith("error:")] or log.strip().splitlines()[-2:]
        first = f"failed, stats.json status {status!r}: {said[0][:120]}" if rc else "succeeded?"
        subprocess.run(["mount", "-o", "remount,size=2g", str(disk)], check=True)
        rc2, _ = finish(start(spec, env))
        return {"fault": "disk full, then space freed and resumed", "injected": True, "run": first,
                "identical": rc2 == 0 and fingerprint(disk / "out") == clean}
    finally:
        subprocess.run(["umount", str(disk)])


def bad_inputs(work: Path, env: dict) -> list[dict]:
    """Each bad file run together with one good file: the run's outcome and what was skipped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = sorted((REPO / "tests" / "data" / "bad").iterdir())
    crafted = work / "crafted"
    crafted.mkdir()
    pq.write_table(pa.table({"text": [["list"], ["of"]]}), crafted / "list_text.parquet")
    pq.write_table(pa.table({"text": [1, 2]}), crafted / "int_text.parquet")
    pq.write_table(pa.table({"text": ["x"], "url": pa.array([b"\xff"], pa.binary())}), crafted / "binary_url.parquet")
    (crafted / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + b'{"text": "first line"}\n')
    out = []
    good = REPO / "tests" / "data" / "bad" / "good.warc.gz"
    for path in [*kinds, *sorted(crafted.iterdir())]:
        if path.name == "good.warc.gz":
            continue
        d = work / "bad" / path.name
        d.mkdir(parents=True)
        shutil.copy(good, d / "good.warc.gz")
        shutil.copy(path, d / path.name)
        spec = d / "spec.json"
        spec.write_text(json.dumps({"name": "bad", "inputs": [{"path": str(d / "good.warc.gz")},
                                                              {"path": str(d / path.name)}],
                                    "output": {"path": str(d / "out")}}))
        proc = subprocess.run([sys.executable, "-m", "curator", "run", str(spec)], env=env, cwd=REPO,
                              capture_output=True, text=True)
        manifest = d / "out" / "manifest.json"
        counts = json.loads(manifest.read_text())["counts"] if manifest.exists() else {}
        out.append({"input": path.name, "exit": proc.returncode, "kept": counts.get("kept"),
                    "skipped": counts.get("input_skipped"),
                    "message": "" if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1][:140]})
        print(out[-1], flush=True)
    return out


def write(args, rows: list[dict], bad: list[dict], full_s: float) -> None:
    lines = [f"# Reliability (`python bench/bench_reliability.py --copies {args.copies}`)", "",
             f"{args.copies} copies of the bundled WARC as separate inputs, {args.cpus} CPUs, one private Ray head; "
             f"clean run {full_s:.1f} s.", "",
             "| fault | injected | run | output identical to the clean run's sha256s | note |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['fault']} | {r['injected']} | {r['run']} | "
              f"{'yes' if r['identical'] else ('n/a' if r['identical'] is None else 'no')} | {r.get('note', '')} |"
              for r in rows]
    lines += ["", "Bad inputs (each beside a good WARC):", "",
              "| input | exit | kept docs | skipped | message |", "| --- | ---: | ---: | --- | --- |"]
    lines += [f"| {b['input']} | {b['exit']} | {b['kept']} | {b['skipped']} | {b['message']} |" for b in bad]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
