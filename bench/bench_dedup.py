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

Setup (once): ``python -m venv /work/venv-bench && /work/venv-bench/bin/pip install "datatrove[processing]"
orjson spacy`` and ``pip install psutil scipy`` in the project venv. Run: ``python bench/bench_dedup.py all``
(writes bench/results/dedup.md, then appends the signature-kernel table of ``kernels``).
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

def _read_parquet_files(batch):
    import pyarrow.parquet as pq

    for path in batch.column("path").to_pylist():
        table = pq.read_table(path)
        yield from (table.slice(k, 1024) for k in range(0, table.num_rows, 1024))


def run_ours(d: Path, cpus: int, params: dict) -> dict:
    t0 = time.time()
    import pyarrow as pa
    import ray

    sys.path.insert(0, str(REPO))
    from curator.dedup.fuzzy import FuzzyDedup
    from curator.pipeline import configure_data_context

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)  # the project is pip-installed
    configure_data_context()  # the pipeline's Ray Data settings
    ray.data.DataContext.get_current().enable_progress_bars = False
    t1 = time.time()
    # one read task per file, materialized, as the pipeline hands documents to a global stage (Ray's own
    # Parquet reader put the four files in one task and made one block of 31k rows and one of 2k)
    files = sorted(str(p) for p in (d / "parquet").glob("*.parquet"))
    ds = ray.data.from_items([{"path": f} for f in files], override_num_blocks=len(files)).map_batches(
        _read_parquet_files, batch_size=1, batch_format="pyarrow").materialize()
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


def _truth(scale: int, docs: list[tuple[str, str]]) -> dict[str, list[tuple[str, float]]]:
    saved = WORK / f"truth-x{scale}.json"
    if saved.exists():
        return {k: [tuple(x) for x in v] for k, v in json.loads(saved.read_text()).items()}
    truth = ground_truth(docs)
    saved.write_text(json.dumps(truth))
    return truth


def main_all(args: argparse.Namespace) -> None:
    """Every system on every corpus scale (medians of ``--repeat`` runs), then ours' CPU scaling."""
    import statistics

    WORK.mkdir(parents=True, exist_ok=True)
    me = [sys.executable, str(Path(__file__).resolve())]
    peer = [BENCH_PY, str(Path(__file__).resolve())]
    corpora, rows = {}, []
    for scale in args.scales:
        docs = make_corpus(scale)
        d = write_corpus(f"x{scale}", docs)
        t = time.time()
        truth = _truth(scale, docs)
        corpora[scale] = {"docs": len(docs), "mb": sum(len(x) for _, x in docs) / 1e6,
                          "pairs": sum(len(v) for v in truth.values()) // 2}
        print(f"corpus x{scale}: {corpora[scale]} (ground truth {time.time() - t:.0f} s)", flush=True)
        ids = [i for i, _ in docs]
        systems = [("ours", "ours (Ray, 2 CPUs)", [*me, "ours", str(d), "--cpus", "2"]),
                   ("datatrove", "datatrove MinhashDedup (2 workers)", [*peer, "datatrove", str(d), "--workers", "2"])]
        if scale <= args.datasketch_max_scale:
            systems.append(("datasketch", "datasketch MinHashLSH (1 process)", [*me, "datasketch", str(d)]))
        if scale == max(args.scales):
            systems.append(("ours-distributed", "ours, every step distributed (`local_max_pairs: 0`)",
                            [*me, "ours", str(d), "--cpus", "2", "--set", "local_max_pairs=0"]))
        repeat = args.repeat if scale <= args.repeat_max_scale else 1
        for key, label, cmd in systems:
            runs = [_measure(cmd, f"{key}-x{scale}-{k}", args.reuse) for k in range(repeat)]
            acc = accuracy(runs[0]["removed"], ids, truth)
            same = all(sorted(r["removed"]) == sorted(runs[0]["removed"]) for r in runs)
            row = {"scale": scale, "key": key, "label": label, "runs": len(runs), "same": same, **acc,
                   "wall_s": statistics.median(r["wall_s"] for r in runs),
                   "wall_min": min(r["wall_s"] for r in runs), "wall_max": max(r["wall_s"] for r in runs),
                   "rss_mb": statistics.median(r["peak_rss_mb"] for r in runs), "docs": runs[0]["docs"],
                   "steps": runs[0].get("step_s")}
            rows.append(row)
            print({k: v for k, v in row.items()}, flush=True)
    cpu_rows = []
    d = WORK / f"x{args.cpu_scale}"
    for cpus in (1, 2):
        runs = [_measure([*me, "ours", str(d), "--cpus", str(cpus)], f"ours-x{args.cpu_scale}-cpu{cpus}-{k}",
                         args.reuse) for k in range(args.repeat)]
        cpu_rows.append((cpus, statistics.median(r["wall_s"] for r in runs), runs[0]["docs"]))
        print("cpus", cpu_rows[-1], flush=True)
    write_report(corpora, rows, cpu_rows, args)


def _machine() -> str:
    import platform

    load = os.getloadavg()
    return (f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), Python "
            f"{platform.python_version()}, load average at the end {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")


def write_report(corpora: dict, rows: list[dict], cpu_rows: list, args: argparse.Namespace) -> None:
    lines = [
        "## Fuzzy dedup (bench/bench_dedup.py)", "",
        f"Command: `python bench/bench_dedup.py all --scales {' '.join(map(str, args.scales))} --repeat "
        f"{args.repeat} --cpu-scale {args.cpu_scale}`. Machine: {_machine()}. All systems ran back to back in "
        f"the same run, each as its own process tree on the same files; wall times are medians of "
        f"{args.repeat} runs (corpora up to x{args.repeat_max_scale}; larger ones once).", "",
        "Corpus: the license and copyright texts Debian installs (/usr/share/common-licenses, "
        "/usr/share/doc/*/copyright: many real near-copies) plus planted near-duplicates (word edits, "
        "insertions, shuffled paragraphs, truncations, pages sharing a boilerplate block); xN has N times the "
        "planted families and N copies of the real texts, in 4 Parquet files (ours) and the same 4 as JSONL "
        "(datatrove). Ground truth: exact word-5-gram Jaccard of every pair (Python sets and a sparse "
        "matrix product, independent of our code).", "",
        "| corpus | docs | MB | true pairs at J >= 0.8 |", "| --- | ---: | ---: | ---: |",
    ]
    for scale, c in corpora.items():
        lines.append(f"| x{scale} | {c['docs']} | {c['mb']:.1f} | {c['pairs']} |")
    lines += [
        "", "Precision: removed documents that have a kept document at J >= 0.8. Recall: TP / (TP + kept "
        "documents that have a kept document with a smaller id at J >= 0.8). Wall: from reading the input to "
        "the result in the driver (ours excludes `ray.init`, but includes Ray worker start-up). Peak RSS: "
        "summed RSS of the whole process tree (Ray: driver, raylet, GCS, workers; it counts shared "
        "object-store pages once per process that maps them).", "",
        "| corpus | system | wall s (min-max) | docs/s | speed-up vs datatrove | peak RSS MB | removed | "
        "precision | recall |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base = {r["scale"]: r["wall_s"] for r in rows if r["key"] == "datatrove"}
    for r in rows:
        speed = f"{base[r['scale']] / r['wall_s']:.1f}x" if r["scale"] in base else ""
        lines.append(f"| x{r['scale']} | {r['label']} | {r['wall_s']:.1f} ({r['wall_min']:.1f}-{r['wall_max']:.1f})"
                     f" | {r['docs'] / r['wall_s']:.0f} | {speed} | {r['rss_mb']:.0f} | {r['removed']} | "
                     f"{r['precision']:.4f} | {r['recall']:.4f} |")
    steps = [r for r in rows if r["key"] == "datatrove" and r["steps"]]
    if steps:
        lines += ["", "datatrove's steps (signature, buckets, cluster, filter), seconds of the first run: " +
                  "; ".join(f"x{r['scale']} " + ", ".join(f"{x:.1f}" for x in r["steps"]) for r in steps) + "."]
    if not all(r["same"] for r in rows):
        lines += ["", "Runs of one system removed different documents: " +
                  ", ".join(f"{r['key']} x{r['scale']}" for r in rows if not r["same"])]
    lines += ["", f"Ray CPUs, ours on x{args.cpu_scale} (`ray.init(num_cpus=N)`, median of {args.repeat}):", "",
              "| Ray CPUs | wall s | docs/s | scaling |", "| ---: | ---: | ---: | ---: |"]
    for cpus, wall, n in cpu_rows:
        lines.append(f"| {cpus} | {wall:.1f} | {n / wall:.0f} | {cpu_rows[0][1] / wall:.2f}x |")
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
    from curator.dedup.fuzzy import SIGN_BATCH, FuzzyDedupConfig, sign

    t = pq.read_table(WORK / "x1" / "parquet")
    cfg = FuzzyDedupConfig()
    bands, rows = cfg.band_shape()
    s = time.process_time()
    for b in t.to_batches(max_chunksize=SIGN_BATCH):
        sign(pa.Table.from_batches([b]), cfg, 0, bands, rows)
    ours = t.num_rows / (time.process_time() - s)
    s = time.process_time()
    for text in t["text"].to_pylist():
        w = _norm_words(text)
        m = MinHash(num_perm=128, seed=1)
        m.update_batch([" ".join(w[k: k + NGRAM]).encode() for k in range(max(len(w) - NGRAM + 1, 1))])
    ds = t.num_rows / (time.process_time() - s)
    lines = ["", "Signature step alone, docs per CPU-second on the x1 corpus (CPU time of one process, so "
             "less sensitive to the machine's load):", "", "| signature step | docs/CPU-s | ratio to ours |",
             "| --- | ---: | ---: |", f"| ours (`fuzzy.sign`: shingles, 128 perms, band keys) | {ours:.0f} | 1.00 |",
             f"| datasketch MinHash.update_batch per doc (128 perms) | {ds:.0f} | {ds / ours:.3f} |"]
    dt = WORK / "measured-datatrove-x1-0.json"
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
    a.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
    a.add_argument("--repeat-max-scale", type=int, default=4, help="larger corpora are measured once")
    a.add_argument("--datasketch-max-scale", type=int, default=1, help="datasketch is one slow process")
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
        main_all(args)
        return kernels()
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
