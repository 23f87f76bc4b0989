"""Fuzzy dedup benchmark: accuracy against exact Jaccard ground truth, speed and memory, side by side.

Systems, each run as its own process tree on the same corpus (peak RSS = the tree's summed RSS,
sampled every 0.1 s, so Ray's workers and datatrove's worker processes count):

- ours: ``curator.dedup.fuzzy:FuzzyDedup`` on a local Ray cluster (``ray.init(num_cpus=N)``);
- datatrove: its 4-step MinhashDedup (signature, buckets, cluster, filter) with LocalPipelineExecutor,
  n-grams 5, 14 buckets x 8 hashes (its defaults), in its own virtualenv;
- datasketch: ``MinHashLSH`` used the plain way (query, then insert if no match), 128 perms.

Corpus: the real license and copyright texts Debian installs (/usr/share/common-licenses,
/usr/share/doc/*/copyright: many real near-copies; each cut to its first 12,000 characters) plus
planted near-duplicates of synthetic base
documents made from that text: word edits, insertions, shuffled paragraphs, truncations, and pages that
share a boilerplate block but differ otherwise. The ground truth is the exact Jaccard of every pair of
word-5-gram shingle sets (lowercase, Unicode punctuation/symbols -> space), computed independently of
our code with Python sets and a sparse matrix product.

Accuracy (at threshold t = 0.8): a removed document is a true positive when some kept document has
Jaccard >= t with it; a kept document is a false negative when a kept document with a smaller id has
Jaccard >= t with it. precision = TP / removed, recall = TP / (TP + FN).

Setup (once): ``python -m venv /work/venv-bench && /work/venv-bench/bin/pip install "datatrove[processing]"``
and ``pip install psutil scipy`` in the project venv. Run: ``python bench/bench_dedup.py all`` (writes
bench/results/dedup.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("DEDUP_BENCH_DIR", "/tmp/dedup-bench"))
BENCH_PY = os.environ.get("DEDUP_BENCH_PY", "/work/venv-bench/bin/python")
THRESHOLD = 0.8
NGRAM = 5
MAX_CHARS = 12_000  # real files are cut here (a few copyright files run to megabytes)
BASES = 600  # planted families per unit of scale
PARTS = 4  # input files per corpus, for every system


# ---------------------------------------------------------------- corpus

def _real_texts() -> list[tuple[str, str]]:
    paths = sorted(Path("/usr/share/common-licenses").glob("*")) + sorted(Path("/usr/share/doc").glob("*/copyright"))
    out = []
    for p in paths:
        if p.is_file():
            text = p.read_text(encoding="utf-8", errors="replace")[:MAX_CHARS]
            if len(text.split()) >= 20:
                out.append((f"real/{p.parent.name}/{p.name}" if p.name == "copyright" else f"real/{p.name}", text))
    return out


def _paragraphs(rnd: random.Random, words: list[str]) -> list[list[str]]:
    cuts = sorted(rnd.sample(range(10, len(words) - 10), k=min(5, max(1, len(words) // 60))))
    return [words[a:b] for a, b in zip([0, *cuts], [*cuts, len(words)], strict=True)]


def make_corpus(scale: int, seed: int = 0) -> list[tuple[str, str]]:
    """Real texts once (scale 1 only adds them once) plus planted families; scale multiplies the bases."""
    rnd = random.Random(seed)
    real = _real_texts()
    stream = [w for _, t in real for w in t.split()]
    vocab = sorted(set(stream))
    boiler = [" ".join(rnd.choice(vocab) for _ in range(rnd.randint(80, 150))) for _ in range(20)]
    docs = list(real) if scale == 1 else [(f"{i}@{k}", t) for k in range(scale) for i, t in real]
    for b in range(BASES * scale):
        start = rnd.randrange(len(stream) - 500)
        words = stream[start: start + rnd.randint(150, 400)]
        words = [rnd.choice(vocab) if rnd.random() < 0.3 else w for w in words]  # a distinct base
        paras = _paragraphs(rnd, words)
        base_id = f"plant/{b:06d}"
        kind = rnd.random()
        if kind < 0.15:  # a family sharing boilerplate but otherwise different pages
            block = rnd.choice(boiler)
            docs.append((base_id, " ".join(words) + "\n\n" + block))
            continue
        docs.append((base_id, "\n\n".join(" ".join(p) for p in paras)))
        for v in range(rnd.choice([0, 0, 1, 1, 2, 3])):
            op = rnd.choice(["edit", "insert", "shuffle", "truncate"])
            if op == "edit":
                rate = rnd.uniform(0.005, 0.08)
                new = [[rnd.choice(vocab) if rnd.random() < rate else w for w in p] for p in paras]
            elif op == "insert":
                new = [list(p) for p in paras]
                i = rnd.randrange(len(new))
                at = rnd.randrange(len(new[i]) + 1)
                new[i][at:at] = [rnd.choice(vocab) for _ in range(rnd.randint(3, 40))]
            elif op == "shuffle":
                new = [list(p) for p in paras]
                rnd.shuffle(new)
            else:
                flat = [w for p in paras for w in p]
                new = [flat[: int(len(flat) * rnd.uniform(0.7, 0.97))]]
            docs.append((f"{base_id}/{op}{v}", "\n\n".join(" ".join(p) for p in new)))
    return docs


def _norm_words(text: str) -> list[str]:
    chars = [" " if unicodedata.category(c)[0] in "PS" else c for c in text.lower()]
    return "".join(chars).split()


def ground_truth(docs: list[tuple[str, str]]) -> dict[str, list[tuple[str, float]]]:
    """Every pair with exact shingle Jaccard >= THRESHOLD: id -> [(partner, J)]."""
    import numpy as np
    import scipy.sparse as sp

    index: dict[tuple, int] = {}
    rows, cols = [], []
    for r, (_, text) in enumerate(docs):
        w = _norm_words(text)
        grams = {tuple(w[i: i + NGRAM]) for i in range(len(w) - NGRAM + 1)} if len(w) >= NGRAM else (
            {tuple(w)} if w else set())
        for g in grams:
            rows.append(r)
            cols.append(index.setdefault(g, len(index)))
    x = sp.csr_matrix((np.ones(len(rows), np.int32), (rows, cols)), shape=(len(docs), len(index)))
    sizes = np.asarray(x.sum(axis=1)).ravel()
    inter = sp.triu(x @ x.T, k=1).tocoo()
    jac = inter.data / (sizes[inter.row] + sizes[inter.col] - inter.data)
    out: dict[str, list[tuple[str, float]]] = {}
    for a, b, j in zip(inter.row, inter.col, jac, strict=True):
        if j >= THRESHOLD:
            out.setdefault(docs[a][0], []).append((docs[b][0], float(j)))
            out.setdefault(docs[b][0], []).append((docs[a][0], float(j)))
    return out


def write_corpus(name: str, docs: list[tuple[str, str]], parts: int = PARTS) -> Path:
    """The same documents as ``parts`` Parquet files (ours) and ``parts`` JSONL files (datatrove)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = WORK / name
    (d / "jsonl").mkdir(parents=True, exist_ok=True)
    (d / "parquet").mkdir(parents=True, exist_ok=True)
    for p in range(parts):
        ids, texts = [i for i, _ in docs[p::parts]], [t for _, t in docs[p::parts]]
        pq.write_table(pa.table({"id": ids, "text": texts, "source": ["bench"] * len(ids),
                                 "url": pa.nulls(len(ids), pa.string()), "meta": ["{}"] * len(ids)}),
                       d / "parquet" / f"part{p}.parquet")
        with open(d / "jsonl" / f"part{p}.jsonl", "w") as f:
            for i, t in zip(ids, texts, strict=True):
                f.write(json.dumps({"id": i, "text": t}) + "\n")
    return d


# ---------------------------------------------------------------- systems (each runs in its own process)

def run_ours(d: Path, cpus: int, params: dict) -> dict:
    t0 = time.time()
    import pyarrow as pa
    import ray

    sys.path.insert(0, str(REPO))
    from curator.dedup.fuzzy import FuzzyDedup

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)  # the project is pip-installed
    ray.data.DataContext.get_current().enable_progress_bars = False
    t1 = time.time()
    # even blocks, two per CPU, as the pipeline hands a global stage (Ray's Parquet reader made one block
    # of 31k rows and one of 2k from four equal files)
    ds = ray.data.read_parquet(str(d / "parquet")).repartition(2 * cpus)
    out = FuzzyDedup(**params).run(ds, seed=0)
    table = pa.concat_tables([t.select(["id", "dup_of"]) for t in ray.get(out.to_arrow_refs())])
    t2 = time.time()
    removed = [i for i, o in zip(table["id"].to_pylist(), table["dup_of"].to_pylist(), strict=True) if o]
    return {"removed": removed, "docs": table.num_rows, "wall_s": t2 - t1, "startup_s": t1 - t0}


def run_datasketch(d: Path) -> dict:
    import pyarrow.parquet as pq
    from datasketch import MinHash, MinHashLSH

    t = pq.read_table(d / "parquet", columns=["id", "text"])
    t1 = time.time()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=128)
    removed = []
    for i, text in zip(t["id"].to_pylist(), t["text"].to_pylist(), strict=True):
        w = _norm_words(text)
        grams = {" ".join(w[k: k + NGRAM]) for k in range(max(len(w) - NGRAM + 1, 1))} if w else set()
        m = MinHash(num_perm=128, seed=1)
        m.update_batch([g.encode() for g in grams])
        if grams and lsh.query(m):
            removed.append(i)
        elif grams:
            lsh.insert(i, m)
    return {"removed": removed, "docs": t.num_rows, "wall_s": time.time() - t1}


def run_datatrove(d: Path, workers: int) -> dict:
    import shutil

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    out = d / "datatrove"
    shutil.rmtree(out, ignore_errors=True)
    cfg = MinhashConfig()  # 5-grams, 14 buckets x 8 hashes
    reader = lambda: JsonlReader(str(d / "jsonl"), glob_pattern="*.jsonl")  # noqa: E731
    steps, times = [
        ([reader(), MinhashDedupSignature(output_folder=str(out / "sigs"), config=cfg)], PARTS),
        ([MinhashDedupBuckets(input_folder=str(out / "sigs"), output_folder=str(out / "buckets"), config=cfg)],
         cfg.num_buckets),
        ([MinhashDedupCluster(input_folder=str(out / "buckets"), output_folder=str(out / "remove"), config=cfg)], 1),
        ([reader(), MinhashDedupFilter(input_folder=str(out / "remove"),
                                       exclusion_writer=JsonlWriter(str(out / "removed"), compression=None)),
          JsonlWriter(str(out / "kept"), compression=None)], PARTS),
    ], []
    t1 = time.time()
    for k, (pipeline, tasks) in enumerate(steps):
        s = time.time()
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=min(workers, tasks),
                              logging_dir=str(out / f"logs{k}")).run()
        times.append(time.time() - s)
    wall = time.time() - t1
    removed = []
    for f in sorted((out / "removed").glob("*")):
        removed += [json.loads(line)["id"] for line in open(f)]
    docs = sum(1 for f in (d / "jsonl").glob("*.jsonl") for _ in open(f))
    return {"removed": removed, "docs": docs, "wall_s": wall, "step_s": times}


# ---------------------------------------------------------------- orchestration

def _measure(cmd: list[str], label: str, reuse: bool = False) -> dict:
    """Run a child; sample the summed RSS of its whole process tree; return its JSON result + peak.

    Each measurement is saved; with ``reuse`` a saved one is read back instead of measured again (so a
    run cut short on a loaded machine resumes where it stopped).
    """
    import psutil

    saved = WORK / f"measured-{label}.json"
    if reuse and saved.exists():
        return json.loads(saved.read_text())
    res_file = WORK / f"result-{label}.json"
    res_file.unlink(missing_ok=True)
    t0 = time.time()
    proc = subprocess.Popen([*cmd, "--result", str(res_file)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, stop = 0, False

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not stop:
            try:
                procs = [root, *root.children(recursive=True)]
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    stop = True
    th.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{err.decode()[-3000:]}")
    res = json.loads(res_file.read_text())
    res.update(peak_rss_mb=peak / 2**20, process_s=time.time() - t0)
    saved.write_text(json.dumps(res))
    return res


def accuracy(removed: list[str], ids: list[str], truth: dict[str, list[tuple[str, float]]]) -> dict:
    gone = set(removed)
    tp = sum(1 for d in gone if any(k not in gone for k, _ in truth.get(d, [])))
    fn = sum(1 for d in ids if d not in gone and any(k not in gone and k < d for k, _ in truth.get(d, [])))
    return {"removed": len(gone), "tp": tp, "fn": fn, "precision": tp / len(gone) if gone else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0}


def main_all(args: argparse.Namespace) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    me = [sys.executable, str(Path(__file__).resolve())]
    docs1 = make_corpus(1)
    d1 = write_corpus("x1", docs1)
    t = time.time()
    truth = ground_truth(docs1)
    print(f"corpus x1: {len(docs1)} docs, {sum(len(x) for _, x in docs1) / 1e6:.1f} MB, "
          f"{sum(len(v) for v in truth.values()) // 2} true pairs (ground truth {time.time() - t:.0f} s)", flush=True)
    ids = [i for i, _ in docs1]
    rows = []
    for label, cmd in [
        ("ours (Ray, 2 CPUs)", [*me, "ours", str(d1), "--cpus", "2"]),
        ("datatrove MinhashDedup (2 workers)", [BENCH_PY, str(Path(__file__).resolve()), "datatrove", str(d1),
                                                "--workers", "2"]),
        ("datasketch MinHashLSH (1 process)", [*me, "datasketch", str(d1)]),
    ]:
        r = _measure(cmd, label.split()[0], args.reuse)
        acc = accuracy(r["removed"], ids, truth)
        rows.append((label, r, acc))
        print(label, {k: v for k, v in r.items() if k != "removed"}, acc, flush=True)
    scale_rows = []
    for scale in args.scales:
        d = WORK / f"x{scale}"
        if not (d / "parquet").exists():
            d = write_corpus(f"x{scale}", make_corpus(scale))
        for cpus in ([1, 2] if scale == args.cpu_scale else [2]):
            r = _measure([*me, "ours", str(d), "--cpus", str(cpus)], f"ours-x{scale}-{cpus}", args.reuse)
            scale_rows.append((scale, cpus, r))
            print("scale", scale, cpus, {k: v for k, v in r.items() if k != "removed"}, flush=True)
    write_report(rows, scale_rows, len(docs1), sum(len(x) for _, x in docs1), truth)


def write_report(rows, scale_rows, n_docs, n_bytes, truth) -> None:
    pairs = sum(len(v) for v in truth.values()) // 2
    lines = [
        "## Fuzzy dedup (bench/bench_dedup.py)", "",
        "Command: `python bench/bench_dedup.py all` on the 2-core shared VM (other sessions were running "
        "tests and benchmarks on the same 2 cores, so wall times are noisy; all systems ran back to back "
        "in the same run).", "",
        f"Corpus x1: {n_docs} documents, {n_bytes / 1e6:.1f} MB: Debian license/copyright texts plus planted "
        f"near-duplicates (edits, insertions, shuffled paragraphs, truncations, shared boilerplate). Ground "
        f"truth: exact word-5-gram Jaccard of all pairs; {pairs} pairs at J >= {THRESHOLD}.", "",
        "Precision: removed docs that have a kept doc at J >= 0.8. Recall: TP / (TP + kept docs that have a "
        "smaller-id kept doc at J >= 0.8). Peak RSS: summed RSS of the process tree (Ray: driver, raylet, "
        "GCS and workers).", "",
        "| system | wall s | docs/s | peak RSS MB | removed | precision | recall |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, r, acc in rows:
        lines.append(f"| {label} | {r['wall_s']:.1f} | {r['docs'] / r['wall_s']:.0f} | {r['peak_rss_mb']:.0f} | "
                     f"{acc['removed']} | {acc['precision']:.4f} | {acc['recall']:.4f} |")
    base = {label.split()[0]: r for label, r, _ in rows}
    if "ours" in base and "datatrove" in base:
        lines += ["", f"Wall-time ratio datatrove / ours: {base['datatrove']['wall_s'] / base['ours']['wall_s']:.2f}x"
                  f" (datatrove steps s: {', '.join(f'{s:.1f}' for s in base['datatrove'].get('step_s', []))}; "
                  f"ours excludes Ray start-up of {base['ours'].get('startup_s', 0):.1f} s)."]
    lines += ["", "Scaling of ours (same generator, more planted families and repeated real texts):", "",
              "| corpus | docs | Ray CPUs | wall s | docs/s | peak RSS MB |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for scale, cpus, r in scale_rows:
        lines.append(f"| x{scale} | {r['docs']} | {cpus} | {r['wall_s']:.1f} | {r['docs'] / r['wall_s']:.0f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    out = REPO / "bench" / "results" / "dedup.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


def kernels() -> None:
    """Signature throughput on one core, in this process: ours vs datasketch; datatrove's from its run."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasketch import MinHash

    sys.path.insert(0, str(REPO))
    from curator.dedup.fuzzy import FuzzyDedupConfig, sign

    t = pq.read_table(WORK / "x1" / "parquet")
    cfg = FuzzyDedupConfig()
    bands, rows = cfg.band_shape()
    s = time.process_time()
    for b in t.to_batches(max_chunksize=512):
        sign(pa.Table.from_batches([b]), cfg, 0, bands, rows)
    ours = t.num_rows / (time.process_time() - s)
    s = time.process_time()
    for text in t["text"].to_pylist():
        w = _norm_words(text)
        m = MinHash(num_perm=128, seed=1)
        m.update_batch([" ".join(w[k: k + NGRAM]).encode() for k in range(max(len(w) - NGRAM + 1, 1))])
    ds = t.num_rows / (time.process_time() - s)
    lines = ["", "Signature step alone, docs per CPU-second on the x1 corpus (CPU time, so less sensitive "
             "to the shared machine's load):", "", "| signature step | docs/CPU-s | ratio to ours |",
             "| --- | ---: | ---: |", f"| ours (`fuzzy.sign`: shingles, 128 perms, band keys) | {ours:.0f} | 1.00 |",
             f"| datasketch MinHash.update_batch per doc (128 perms) | {ds:.0f} | {ds / ours:.3f} |"]
    dt = WORK / "result-datatrove.json"
    if dt.exists():
        r = json.loads(dt.read_text())
        per = r["docs"] / (r["step_s"][0] * 2)
        lines.append(f"| datatrove MinhashDedupSignature (wall of 2 workers, per worker) | {per:.0f} | "
                     f"{per / ours:.3f} |")
    out = REPO / "bench" / "results" / "dedup.md"
    with open(out, "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("kernels")
    a = sub.add_parser("all")
    a.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    a.add_argument("--cpu-scale", type=int, default=4, help="corpus scale timed at 1 and 2 Ray CPUs")
    a.add_argument("--reuse", action="store_true", help="read back measurements saved by an earlier run")
    for name in ("ours", "datasketch", "datatrove"):
        p = sub.add_parser(name)
        p.add_argument("dir", type=Path)
        p.add_argument("--result", type=Path, required=True)
        p.add_argument("--cpus", type=int, default=2)
        p.add_argument("--workers", type=int, default=2)
        p.add_argument("--set", action="append", default=[], metavar="PARAM=JSON",
                       help="a fuzzy_dedup parameter (ours only), e.g. --set local_max_pairs=0")
    args = ap.parse_args()
    if args.cmd == "all":
        return main_all(args)
    if args.cmd == "kernels":
        return kernels()
    if args.cmd == "ours":
        res = run_ours(args.dir, args.cpus, {k: json.loads(v) for k, v in (x.split("=", 1) for x in args.set)})
    elif args.cmd == "datasketch":
        res = run_datasketch(args.dir)
    else:
        res = run_datatrove(args.dir, args.workers)
    args.result.write_text(json.dumps(res))


if __name__ == "__main__":
    main()
