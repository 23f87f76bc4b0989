"""Held-out split benchmark: near-duplicate clusters that straddle train/eval, with and without dedup.

Corpus: ``bench_dedup.make_corpus`` (real Debian license/copyright texts plus planted near-duplicate
families), written as Parquet files with our ``id`` kept (``id_column``). Truth: every pair with exact
word-5-gram Jaccard >= 0.8 (``bench_dedup.ground_truth``, independent of our code); a truth cluster is a
connected component of those pairs. A cluster *straddles* when its kept members lie in both train and eval.

Runs, each a full ``curator run`` on one local Ray cluster:

- ``hash``: split alone, grouping off (``group_near_duplicates: false``): the old rule;
- ``split``: split alone, grouping on (the default);
- ``dedup+hash``: fuzzy_dedup then split, grouping off;
- ``dedup+split``: fuzzy_dedup then split, grouping on;
- ``dedup+split+overlap``: as above plus ``eval_overlap`` (train documents quoting eval dropped).

Reported: straddling clusters (goal 0 with grouping), eval share reached (goal: near eval_fraction), and
the split stage's own seconds (grouping against a hash split). Run: ``python bench/bench_split.py --scale 1``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

EVAL_FRACTION = 0.05


def truth_clusters(truth: dict[str, list[tuple[str, float]]]) -> list[set[str]]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, partners in truth.items():
        for b, _ in partners:
            parent[find(a)] = find(b)
    groups: dict[str, set[str]] = defaultdict(set)
    for x in parent:
        groups[find(x)].add(x)
    return [g for g in groups.values() if len(g) > 1]


def sides(out: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    manifest = json.loads((out / "manifest.json").read_text())
    got = {}
    for f in manifest["files"]:
        if f["subset"] in ("train", "eval"):
            for doc_id in pq.read_table(out / f["path"], columns=["meta"]).column("meta").to_pylist():
                got[json.loads(doc_id)["id"]] = f["subset"]
    return got


def run(name: str, stages: list[dict], data: Path, work: Path) -> dict:
    from curator.pipeline import run_pipeline
    from curator.spec import validate_spec

    spec = {"name": name.replace("+", "-"),
            "inputs": [{"path": str(data / "parquet" / "*.parquet"), "format": "parquet",
                        "options": {"meta_columns": ["id"]}}],
            "stages": stages, "output": {"path": str(work / name), "overwrite": True, "rejected": False}}
    t0 = time.perf_counter()
    res = run_pipeline(validate_spec(spec))
    wall = time.perf_counter() - t0
    split_s = sum(s["seconds"] for s in res.stats["stages"] if s["name"] == "split")
    return {"name": name, "wall_s": round(wall, 1), "split_s": round(split_s, 2), "out": work / name}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--scale", type=int, default=1)
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--work", default="/tmp/split-bench")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "split.md"))
    args = p.parse_args()
    import ray
    from bench_dedup import ground_truth, make_corpus, write_corpus

    work = Path(args.work)
    docs = make_corpus(args.scale)
    truth = ground_truth(docs)
    clusters = truth_clusters(truth)
    data = write_corpus(f"split-x{args.scale}", docs)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    split = {"stage": "split", "eval_fraction": EVAL_FRACTION}
    runs = [
        run("hash", [{**split, "group_near_duplicates": False}], data, work),
        run("split", [split], data, work),
        run("dedup+hash", [{"stage": "fuzzy_dedup"}, {**split, "group_near_duplicates": False}], data, work),
        run("dedup+split", [{"stage": "fuzzy_dedup"}, split], data, work),
        run("dedup+split+overlap", [{"stage": "fuzzy_dedup"}, split, {"stage": "eval_overlap"}], data, work),
    ]
    rows = []
    for r in runs:
        side = sides(r["out"])
        straddle = sum(1 for c in clusters if len({side[d] for d in c if d in side}) > 1)
        n_eval = sum(1 for s in side.values() if s == "eval")
        rows.append({**r, "straddling": straddle, "kept": len(side), "eval_share": n_eval / max(1, len(side))})
        print(rows[-1])
    lines = [f"# Held-out split (`python bench/bench_split.py --scale {args.scale}`)", "",
             f"Corpus: {len(docs):,} documents (bench_dedup x{args.scale}), {len(clusters):,} truth clusters "
             f"(Jaccard >= 0.8 on word 5-grams), eval_fraction {EVAL_FRACTION}, {args.cpus} CPUs.", "",
             "| run | straddling clusters | kept docs | eval share | split stage s | run wall s |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['name']} | {r['straddling']} | {r['kept']:,} | {r['eval_share']:.3f} | {r['split_s']} | "
              f"{r['wall_s']} |" for r in rows]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
