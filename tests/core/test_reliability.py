"""Reliability on the session's Ray cluster: nothing foreign deleted, one run per output, resume after a
killed driver, a killed worker or progress actor changes nothing, bad files cost only themselves, the
same spec gives the same bytes, verify catches a damaged output."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curator.pipeline import RunFailed, run_pipeline
from curator.spec import validate_spec
from curator.verify import verify_output
from curator.writers.lock import LOCK, OutputLockedError
from curator.writers.output import OutputNotEmptyError

pytestmark = pytest.mark.ray
REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "data" / "bad"
WARC = REPO / "examples" / "data" / "sample.warc.gz"
WORDS = ("river stone market winter garden letter window signal harbor lantern meadow engine copper thunder pocket "
         "silver bridge candle forest mirror orchard violet basket saddle").split()


def _corpus(folder: Path, files: int = 6, docs: int = 30) -> str:
    """``files`` JSONL files; every fifth document repeats one of file 0 (exact duplicates across files)."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        lines = []
        for i in range(docs):
            k = i if i % 5 else 0
            src = 0 if i % 5 == 0 else f
            rng = random.Random(f"{src}-{k}")  # distinct documents (not near-copies of each other) but the planted
            text = f"document {src}-{k} about " + " ".join(rng.choice(WORDS) for _ in range(30))
            lines.append(json.dumps({"text": text if i % 9 else "short"}) + "\n")
        (folder / f"part{f:02d}.jsonl").write_text("".join(lines))
    return str(folder / "part*.jsonl")


def _spec(inputs: str, out: Path, **extra) -> dict:
    spec = {"name": "rel", "inputs": [{"path": inputs, "source": "test"}],
            "stages": [{"stage": "min_length", "min_chars": 40}, {"stage": "exact_dedup"},
                       {"stage": "split", "eval_fraction": 0.2}],
            "output": {"path": str(out), "shard_size_mb": 0.004}, "ray": {"batch_size": 8}}
    spec.update(extra)
    return spec


def _hashes(manifest: dict) -> list[tuple[str, int, str]]:
    return [(f["path"], f["rows"], f["sha256"]) for f in manifest["files"]]


def _run(spec: dict, **kwargs):
    return run_pipeline(validate_spec(spec), **kwargs)


def _cli(spec_path: Path, ray_head: dict) -> subprocess.Popen:
    env = dict(os.environ, RAY_ADDRESS=ray_head["gcs"], PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "curator", "run", str(spec_path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(predicate, timeout: float = 120.0, step: float = 0.02) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(step)


def test_same_spec_gives_the_same_bytes_and_verify_passes(ray_cluster, tmp_path):
    inputs = _corpus(tmp_path / "in")
    a = _run(_spec(inputs, tmp_path / "a"))
    b = _run(_spec(inputs, tmp_path / "b"))
    assert _hashes(a.manifest) == _hashes(b.manifest)
    assert {f["subset"] for f in a.manifest["files"]} == {"train", "eval", "rejected"}
    report = verify_output(str(tmp_path / "a"))
    assert report["ok"], report["problems"]
    counts = a.manifest["counts"]
    # "document 0-0 ..." is the text of documents 5, 10, 15, 20, 25 of every file: 30 copies, one kept
    assert counts["drops_by_stage"]["exact_dedup"]["exact_duplicate"] == 29
    assert counts["kept"] + counts["rejected"] == counts["input_docs"] == 180


def test_verify_catches_a_damaged_or_incomplete_output(ray_cluster, tmp_path):
    out = tmp_path / "out"
    res = _run(_spec(_corpus(tmp_path / "in", files=2), out))
    first, second = res.manifest["files"][0]["path"], res.manifest["files"][1]["path"]
    data = bytearray((out / first).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / first).write_bytes(bytes(data))
    (out / second).unlink()
    problems = verify_output(str(out))["problems"]
    assert any(first in p and "sha256" in p for p in problems)
    assert any(second in p and "missing" in p for p in problems)
    (out / "manifest.json").unlink()
    assert not verify_output(str(out))["ok"]


def test_nothing_foreign_is_deleted_and_inputs_inside_the_output_survive(ray_cluster, tmp_path):
    out = tmp_path / "out"
    inputs = _corpus(out / "inputs", files=2)  # the inputs live inside the output folder
    (out / "train").mkdir()
    (out / "train" / "users-own.parquet").write_bytes(b"not ours")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(OutputNotEmptyError, match="not a curator output"):
        _run(_spec(inputs, out))
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    spec = _spec(inputs, out)
    spec["output"]["overwrite"] = True
    first = _run(spec)
    second = _run(spec)  # replaces its own first run, still leaves the foreign files alone
    for path, data in before.items():
        assert path.read_bytes() == data
    listed = {f["path"] for f in second.manifest["files"]}
    ours = {str(p.relative_to(out)) for p in out.rglob("*.parquet") if "inputs" not in p.parts} - \
        {"train/users-own.parquet"}
    assert ours == listed and _hashes(first.manifest) == _hashes(second.manifest)


def test_a_failing_overwrite_leaves_the_old_dataset(ray_cluster, tmp_path):
    out = tmp_path / "out"
    inputs = _corpus(tmp_path / "in", files=2)
    old = _run(_spec(inputs, out))
    spec = _spec(inputs, out)
    spec["output"]["overwrite"] = True
    spec["stages"][-1] = {"stage": "split", "stratify_by": "no_such_column"}  # fails in the global stage
    with pytest.raises(RunFailed, match="no_such_column"):
        _run(spec)
    assert json.loads((out / "manifest.json").read_text())["run_id"] == old.manifest["run_id"]
    assert verify_output(str(out))["ok"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["status"] == "failed" and "no_such_column" in stats["error"] and "\x1b[" not in stats["error"]
    assert not (out / LOCK).exists()


def test_a_second_run_on_the_same_output_is_refused(ray_cluster, ray_head, tmp_path):
    out = tmp_path / "out"
    spec = {"name": "slow", "inputs": [{"path": str(WARC), "source": "commoncrawl"}],
            "stages": [{"stage": "html_to_text"}], "output": {"path": str(out)}, "limit": 300}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = _cli(tmp_path / "spec.json", ray_head)
    try:
        _wait_for(lambda: (out / LOCK).exists() or proc.poll() is not None)
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        with pytest.raises(OutputLockedError, match="is being written by run"):
            _run(spec)
    finally:
        assert proc.wait(timeout=300) == 0, proc.stdout.read().decode()[-3000:]
    assert verify_output(str(out))["ok"]


def test_killed_driver_then_resumed_run_gives_the_clean_runs_bytes(ray_cluster, ray_head, tmp_path):
    inputs = _corpus(tmp_path / "in", files=16, docs=40)
    clean = _run(_spec(inputs, tmp_path / "clean"))
    out = tmp_path / "out"
    spec = _spec(inputs, out, ray={"batch_size": 8, "concurrency": 1})
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    records = out / "_curator" / "work" / "p0"
    proc = _cli(tmp_path / "spec.json", ray_head)
    _wait_for(lambda: len(list(records.glob("*.json"))) >= 5 or proc.poll() is not None)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _settled(lambda: len(list(records.glob("*.json"))))  # a task in flight may still finish its record
    assert 5 <= done < 16, "the driver was killed in the middle of phase 0"
    assert not (out / "manifest.json").exists()
    assert not verify_output(str(out))["ok"]  # an unfinished output is never readable as finished
    inspect = subprocess.run([sys.executable, "-m", "curator", "inspect", str(out)], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert inspect.returncode == 2 and "not a finished run" in inspect.stderr
    # a changed input file invalidates its own unit only
    first_done = sorted(records.glob("*.json"))[0]
    unit = int(first_done.name.split(".")[0])
    changed = Path(sorted(Path(inputs).parent.glob("part*.jsonl"))[unit])
    changed.write_text(changed.read_text())  # same bytes, new mtime
    os.utime(changed, (time.time() + 5, time.time() + 5))
    resumed = _run(spec)
    assert resumed.stats["units"]["resumed"] == done - 1
    # the same bytes (names carry the keys, and a changed input changes its key)
    assert [h[1:] for h in _hashes(resumed.manifest)] == [h[1:] for h in _hashes(clean.manifest)]
    assert resumed.manifest["counts"] == clean.manifest["counts"]
    assert verify_output(str(out))["ok"]
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    assert not (out / "_curator" / "work").exists()
    fresh = _run({**spec, "output": {**spec["output"], "overwrite": True}}, fresh=True)
    assert fresh.stats["units"]["resumed"] == 0 and _hashes(fresh.manifest) == _hashes(resumed.manifest)


def _settled(count, quiet: float = 5.0, timeout: float = 60.0) -> int:
    """``count()`` once it has not changed for ``quiet`` seconds (the killed driver's Ray workers outlive it
    until Ray notices their owner is gone, and a task that was running then may still write its record)."""
    last, since, deadline = count(), time.time(), time.time() + timeout
    while time.time() - since < quiet and time.time() < deadline:
        time.sleep(0.5)
        now = count()
        if now != last:
            last, since = now, time.time()
    return last


def _run_in_thread(spec: dict) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def target() -> None:
        try:
            box["result"] = _run(spec)
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def test_a_killed_worker_neither_fails_the_run_nor_changes_its_output(ray_cluster, tmp_path):
    from ray.util.state import list_tasks

    def spec(out: str) -> dict:
        return {"name": "kill", "inputs": [{"path": str(WARC), "source": "commoncrawl"}],
                "stages": [{"stage": "html_to_text"}, {"stage": "min_length", "min_chars": 200}],
                "output": {"path": str(tmp_path / out)}, "limit": 400}

    clean = _run(spec("clean"))
    thread, box = _run_in_thread(spec("out"))
    pids: list[int] = []

    def running() -> bool:
        tasks = list_tasks(filters=[("name", "=", "execute_unit"), ("state", "=", "RUNNING")])
        pids.extend(t.worker_pid for t in tasks if t.worker_pid)
        return bool(pids) or not thread.is_alive()

    _wait_for(running, step=0.2)
    assert pids, "the task finished before it could be killed"
    time.sleep(1.0)
    os.kill(pids[0], signal.SIGKILL)
    thread.join(timeout=600)
    assert "error" not in box, box.get("error")
    res = box["result"]
    assert _hashes(res.manifest) == _hashes(clean.manifest)
    assert res.manifest["counts"] == clean.manifest["counts"]
    assert res.stats["stages"] == clean.stats["stages"] or \
        [s["docs_out"] for s in res.stats["stages"]] == [s["docs_out"] for s in clean.stats["stages"]]


def test_a_killed_progress_actor_changes_nothing(ray_cluster, tmp_path):
    import ray
    from ray.util.state import list_actors

    inputs = _corpus(tmp_path / "in", files=12, docs=40)
    clean = _run(_spec(inputs, tmp_path / "clean"))
    thread, box = _run_in_thread(_spec(inputs, tmp_path / "out", ray={"batch_size": 8, "concurrency": 1}))
    names: list[str] = []

    def alive() -> bool:
        names.extend(a.name for a in list_actors(filters=[("class_name", "=", "Progress"), ("state", "=", "ALIVE")]))
        return bool(names) or not thread.is_alive()

    _wait_for(alive, step=0.1)
    assert names
    ray.kill(ray.get_actor(names[0]), no_restart=True)
    thread.join(timeout=600)
    assert "error" not in box, box.get("error")
    assert _hashes(box["result"].manifest) == _hashes(clean.manifest)
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["status"] == "succeeded"


def test_bad_files_cost_only_their_own_documents(ray_cluster, tmp_path):
    import pyarrow as pa

    good = _corpus(tmp_path / "in", files=2)
    pq.write_table(pa.table({"text": [["a list"], ["not text"]]}), tmp_path / "in" / "list_text.parquet")
    pq.write_table(pa.table({"text": [1, 2, 3]}), tmp_path / "in" / "int_text.parquet")
    for name in ("truncated.jsonl.gz", "empty.jsonl.zst", "not_parquet.parquet", "mixed.jsonl"):
        shutil.copy(BAD / name, tmp_path / "in" / name)
    spec = _spec(good, tmp_path / "out")
    spec["inputs"].append({"path": str(tmp_path / "in" / "*[!0-9].*"), "source": "bad"})
    spec["stages"] = []
    res = _run(spec)
    clean = _run({**_spec(good, tmp_path / "clean"), "stages": []})
    kept_ids = {r for f in res.manifest["files"] if f["subset"] == "data"
                for r in pq.read_table(tmp_path / "out" / f["path"]).column("id").to_pylist()}
    clean_ids = {r for f in clean.manifest["files"]
                 for r in pq.read_table(tmp_path / "clean" / f["path"]).column("id").to_pylist()}
    assert clean_ids <= kept_ids  # every good document is there
    skipped = res.manifest["counts"]["input_skipped"]
    assert skipped["bad_text_column"] == 5 and skipped["corrupt_file"] == 1 and skipped["empty_file"] == 1
    assert skipped["corrupt_stream"] == 1 and skipped["invalid_json"] >= 1
    assert verify_output(str(tmp_path / "out"))["ok"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_fails_the_run_with_a_clear_status(ray_cluster, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("mount -t tmpfs was refused here")
    try:
        import hashlib

        (tmp_path / "in").mkdir()
        words = [hashlib.sha256(str(i).encode()).hexdigest()[:8] for i in range(40_000)]  # incompressible
        (tmp_path / "in" / "big.jsonl").write_text("".join(
            json.dumps({"text": " ".join(words[i:i + 100])}) + "\n" for i in range(0, 40_000, 100)))
        spec = {"name": "full", "inputs": [{"path": str(tmp_path / "in" / "big.jsonl")}],
                "output": {"path": str(disk / "out")}}
        with pytest.raises(RunFailed, match="No space left on device"):
            _run(spec)
        stats = json.loads((disk / "out" / "stats.json").read_text())
        assert stats["status"] == "failed" and "No space left" in stats["error"]
        assert not (disk / "out" / "manifest.json").exists()
    finally:
        subprocess.run(["umount", str(disk)])
