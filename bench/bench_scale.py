"""Scale benchmark: the pile recipe at 1x, 4x, 16x, 32x with the object store capped, cost per document.

Corpus: ``bench/scale_corpus.py`` (real text of this machine with planted exact and near duplicates; half
the files jsonl.zst, half Parquet). Each scale runs on a fresh private Ray head (``tests/ray_head.py``)
with ``--num-cpus`` CPUs and the object store capped (``--object-store-gib``, spilling to a local folder),
started before the clock starts; the run itself is ``curator run`` in its own process. Measured:

- wall time of the run and documents per second per core;
- peak RSS summed over every process of the head and of the run (sampled every 0.5 s);
- bytes Ray spilled to disk (``ray memory --stats-only`` after the run);
- precision/recall of the dedup stages on the planted clusters: a cluster of k documents should lose
  exactly k - 1; recall = sum(min(removed, k - 1)) / sum(k - 1), precision = those / all removed.

Recipe (the pile's): normalize -> min_length -> gopher_quality -> gopher_repetition -> pii (fast engine) ->
exact_dedup -> fuzzy_dedup -> paragraph_dedup -> split. Peer: datatrove's MinHash dedup (4 steps) on the
same documents at 1x and 4x, in its own virtualenv (``--peer-python``).

Run: ``python bench/scale_corpus.py --scale 1 4 16 32`` once, then
``python bench/bench_scale.py --scales 1 4 16 32`` (writes bench/results/scale.md and scale.png).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]
STAGES = [{"stage": "normalize"}, {"stage": "min_length", "min_chars": 200}, {"stage": "gopher_quality"},
          {"stage": "gopher_repetition"}, {"stage": "pii"}, {"stage": "exact_dedup"}, {"stage": "fuzzy_dedup"},
          {"stage": "paragraph_dedup"}, {"stage": "split", "eval_fraction": 0.01}]
DEDUP_REASONS = {"exact_duplicate", "near_duplicate"}


def spec(corpus: Path, out: Path, stages: list[dict]) -> dict:
    inputs = [{"path": str(corpus / "*.jsonl.zst"), "format": "jsonl", "options": {"id_field": "id"}},
              {"path": str(corpus / "*.parquet"), "format": "parquet",
               "options": {"id_column": "id", "meta_columns": ["id"]}}]
    return {"name": f"scale-{corpus.name}", "inputs": [i for i in inputs if list(corpus.glob(Path(i["path"]).name))],
            "stages": stages, "output": {"path": str(out), "overwrite": True, "shard_size_mb": 256}}


class PeakRss:
    """Summed RSS of the process trees of ``pids``, sampled until stopped."""

    def __init__(self, pids: list[int]) -> None:
        import psutil

        self.roots = [psutil.Process(p) for p in pids]
        self.peak, self._stop = 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(0.5):
            rss, seen = 0, set()
            for root in self.roots:
                try:
                    for p in (root, *root.children(recursive=True)):
                        if p.pid not in seen:
                            seen.add(p.pid)
                            rss += p.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, rss)

    def stop(self) -> int:
        self._stop.set()
        self.thread.join()
        return self.peak


def spilled_bytes(address: str) -> int:
    out = subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "memory", "--stats-only",
                          f"--address={address}"], capture_output=True, text=True).stdout
    m = re.search(r"Spilled (\d+) MiB", out)
    return int(m.group(1)) << 20 if m else 0


def original_ids(out: Path, subsets: tuple[str, ...]) -> list[str]:
    """The generator's ids of the documents in these subsets (the readers keep them in meta)."""
    import pyarrow.parquet as pq

    manifest = json.loads((out / "manifest.json").read_text())
    ids = []
    for f in manifest["files"]:
        if f["subset"] in subsets:
            t = pq.read_table(out / f["path"], columns=["meta"] + (["drop_reason"] if f["subset"] == "rejected"
                                                                   else []))
            metas = t.column("meta").to_pylist()
            reasons = t.column("drop_reason").to_pylist() if "drop_reason" in t.column_names else [None] * len(metas)
            ids += [json.loads(m)["id"] for m, r in zip(metas, reasons) if f["subset"] != "rejected" or
                    r in DEDUP_REASONS]
    return ids


def score(removed: list[str], clusters: list[list[str]], reached: set[str] | None = None) -> dict:
    """Precision/recall of dedup removals on the planted clusters. With ``reached`` (the documents that
    got to the dedup stages: kept or removed as duplicates), each cluster counts only its members that
    reached them (members an earlier quality rule dropped are neither found nor missed)."""
    gone = set(removed)
    hit = planted = 0
    for c in clusters:
        members = [m for m in c if reached is None or m in reached]
        if len(members) > 1:
            hit += min(sum(m in gone for m in members), len(members) - 1)
            planted += len(members) - 1
    return {"removed": len(gone), "precision": hit / len(gone) if gone else 1.0,
            "recall": hit / planted if planted else 1.0}


def run_scale(corpus: Path, cpus: int, store_gib: float, work: Path) -> dict:
    from tests.ray_head import PrivateRayHead

    meta = json.loads((corpus / "meta.json").read_text())
    clusters = json.loads((corpus / "clusters.json").read_text())
    head_dir = Path(tempfile.mkdtemp(prefix="scale-ray-", dir="/tmp"))
    spill = work / "spill"
    spill.mkdir(parents=True, exist_ok=True)
    system = json.dumps({"object_spilling_config": json.dumps(
        {"type": "filesystem", "params": {"directory_path": str(spill)}})})
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONPATH=str(REPO))
    extra = (f"--object-store-memory={int(store_gib * 2**30)}", f"--system-config={system}")
    out = work / f"out-{corpus.name}"
    spec_path = work / f"{corpus.name}.json"
    spec_path.write_text(json.dumps(spec(corpus, out, STAGES)))
    with PrivateRayHead(head_dir, num_cpus=cpus, env=env, extra_args=extra) as head:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "curator", "run", str(spec_path), "--fresh"], cwd=REPO,
                                env=dict(env, RAY_ADDRESS=head.gcs), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        rss = PeakRss([head.proc.pid, proc.pid])
        log = proc.communicate()[0].decode(errors="replace")
        wall = time.perf_counter() - t0
        peak = rss.stop()
        spilled = spilled_bytes(head.gcs)
    if proc.returncode != 0:
        raise RuntimeError(f"{corpus.name} failed:\n{log[-4000:]}")
    stats = json.loads((out / "manifest.json").read_text())["stats"]
    removed = original_ids(out, ("rejected",))
    reached = set(removed) | set(original_ids(out, ("train", "eval", "data")))
    return {"scale": meta["scale"], "docs": meta["docs"], "gb_text": meta["chars"] / 1e9, "wall_s": wall,
            "docs_per_s_core": meta["docs"] / wall / cpus, "peak_rss_gib": peak / 2**30,
            "spilled_gib": spilled / 2**30, **score(removed, clusters, reached),
            "stage_s": {s["name"]: round(s["seconds"], 1) for s in stats["stages"]}}


def run_peer(corpus: Path, peer_python: str, cpus: int, work: Path) -> dict:
    """datatrove's MinHash dedup on a jsonl copy of the corpus, timed as a whole in its own process."""
    import pyarrow.parquet as pq
    import zstandard

    clusters = json.loads((corpus / "clusters.json").read_text())
    d = work / f"peer-{corpus.name}"
    (d / "jsonl").mkdir(parents=True, exist_ok=True)
    for k, f in enumerate(sorted(corpus.iterdir())):
        if f.suffix == ".parquet":
            t = pq.read_table(f)
            lines = [json.dumps({"id": i, "text": x}) for i, x in zip(t["id"].to_pylist(), t["text"].to_pylist())]
        elif f.name.endswith(".jsonl.zst"):
            raw = zstandard.ZstdDecompressor().stream_reader(open(f, "rb")).read().decode()
            lines = [json.dumps({"id": r["id"], "text": r["text"]}) for r in map(json.loads, raw.splitlines())]
        else:
            continue
        (d / "jsonl" / f"part{k}.jsonl").write_text("\n".join(lines) + "\n")
    result = work / f"peer-{corpus.name}.json"
    parts = len(list((d / "jsonl").iterdir()))
    code = (f"import json, sys; sys.path.insert(0, {str(REPO / 'bench')!r}); import bench_dedup as b; "
            f"b.PARTS = {parts}; r = b.run_datatrove(__import__('pathlib').Path({str(d)!r}), {cpus}); "
            f"json.dump(r, open({str(result)!r}, 'w'))")
    t0 = time.perf_counter()
    proc = subprocess.Popen([peer_python, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rss = PeakRss([proc.pid])
    err = proc.communicate()[1].decode(errors="replace")
    wall, peak = time.perf_counter() - t0, rss.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"datatrove failed:\n{err[-3000:]}")
    r = json.loads(result.read_text())
    docs = r["docs"]
    return {"scale": corpus.name, "docs": docs, "wall_s": wall, "docs_per_s_core": docs / wall / cpus,
            "peak_rss_gib": peak / 2**30, **score(r["removed"], clusters)}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    docs = [r["docs"] for r in rows]
    ax[0].plot(docs, [r["docs_per_s_core"] for r in rows], "o-")
    ax[0].set(xscale="log", xlabel="documents", ylabel="docs / s / core", title="throughput per core", ylim=(0, None))
    ax[1].plot(docs, [r["peak_rss_gib"] for r in rows], "o-", label="peak RSS (all processes)")
    ax[1].plot(docs, [r["spilled_gib"] for r in rows], "s--", label="spilled to disk")
    ax[1].set(xscale="log", xlabel="documents", ylabel="GiB", title="memory", ylim=(0, None))
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--scales", type=int, nargs="+", default=[1, 4])
    p.add_argument("--corpus", default="/work/data/scale")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--object-store-gib", type=float, default=2.0)
    p.add_argument("--work", default="/work/data/scale-work")
    p.add_argument("--peer-python", default="/work/venv-bench-pii/bin/python")
    p.add_argument("--peer-scales", type=int, nargs="*", default=[1, 4])
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "scale.md"))
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows, peers = [], []
    for scale in args.scales:
        rows.append(run_scale(Path(args.corpus) / f"x{scale}", args.cpus, args.object_store_gib, work))
        print(json.dumps(rows[-1]), flush=True)
    for scale in args.peer_scales:
        if Path(args.peer_python).exists():
            peers.append(run_peer(Path(args.corpus) / f"x{scale}", args.peer_python, args.cpus, work))
            print(json.dumps(peers[-1]), flush=True)
    png = Path(args.out).with_suffix(".png")
    plot(rows, png)
    base = rows[0]
    lines = [f"# Scale (`python bench/bench_scale.py --scales {' '.join(map(str, args.scales))}`)", "",
             f"{args.cpus} CPUs, object store capped at {args.object_store_gib} GiB (spilling to local disk); "
             "the Ray head starts before the clock.", "",
             "| scale | docs | GB text | wall s | docs/s/core | vs 1x | peak RSS GiB | spilled GiB | precision | "
             "recall |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['scale']}x | {r['docs']:,} | {r['gb_text']:.2f} | {r['wall_s']:.0f} | "
              f"{r['docs_per_s_core']:.0f} | {r['docs_per_s_core'] / base['docs_per_s_core']:.0%} | "
              f"{r['peak_rss_gib']:.2f} | "
              f"{r['spilled_gib']:.2f} | {r['precision']:.4f} | {r['recall']:.4f} |" for r in rows]
    lines += ["", "Stage seconds (global stages: wall; map stages: summed over tasks):", ""]
    lines += [f"- {r['scale']}x: " + ", ".join(f"{k} {v}" for k, v in r["stage_s"].items()) for r in rows]
    if peers:
        lines += ["", "Peer: datatrove MinHash dedup only (4 steps), same documents:", "",
                  "| scale | docs | wall s | docs/s/core | peak RSS GiB | precision | recall |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {r['scale']} | {r['docs']:,} | {r['wall_s']:.0f} | {r['docs_per_s_core']:.0f} | "
                  f"{r['peak_rss_gib']:.2f} | {r['precision']:.4f} | {r['recall']:.4f} |" for r in peers]
    lines += ["", f"![throughput and memory against corpus size]({png.name})"]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
