"""Cluster benchmark: the commoncrawl recipe and fuzzy dedup on one Ray node vs two, as the tests build them.

Hosts are network namespaces joined by a veth pair (``tests/cluster/cluster_hosts.py``; two Ray nodes on
127.0.0.1 where ``ip netns`` is refused), each node started by ``docker/entrypoint.sh head|worker`` before the
clock starts; every run is ``ray job submit -- curator run SPEC`` inside host A, on a fresh output folder, and
the cluster is kept between repeats (warm workers, as a long-lived cluster would be). Arms:

- ``1x2``: one node of 2 CPUs; ``2x1``: two nodes of 1 CPU each (the same total CPUs); ``2x2``: two of 2 each.
- recipe: ``pipelines/commoncrawl.yaml`` on the WARC files of ``--warc`` (default: the bundled sample cut into
  ``--parts`` files, so there is more than one unit to spread); fuzzy: ``fuzzy_dedup`` alone on ``--pile`` (a
  ``bench/scale_corpus.py`` folder such as /work/data/scale/x4, else the bundled ``sample.jsonl.zst``).

- ``recipe-s3`` (on the ``1x2`` arm): the same recipe with its output on S3 (``moto_server`` on host A, a real
  S3 API over HTTP; the nodes get its endpoint and test keys), against the local-output recipe of that arm.

Measured per run: the run's own wall time (``stats.json``: started to finished, without the driver's start),
the job's wall time (submitted to SUCCEEDED), input documents per second of the run, and the CPU-seconds of
every process of the hosts while the job ran (``/proc`` sampled every 0.5 s, so a process that lives less than
that is missed). Reported: the median of ``--repeats`` runs, and each arm's docs/s over the ``1x2`` arm's.

Run as root: ``flock /tmp/curator-ray.lock python bench/bench_cluster.py --repeats 5`` (writes
bench/results/cluster.md). ``--smoke`` is a quick check on a few documents (one repeat, ``--limit 20``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests" / "cluster")]

from cluster_hosts import SAMPLE, TwoHosts, free_port, netns_refusal, split_warc  # noqa: E402

ARMS = {"1x2": (1, 2), "2x1": (2, 1), "2x2": (2, 2)}  # name -> (nodes, CPUs per node)
TICKS = os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU-seconds used by the processes of ``hosts`` from start() to stop() (sampled, see the module doc)."""

    def __init__(self, hosts: list) -> None:
        self.hosts, self.base, self.last = hosts, {}, {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _cpu(pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
        except (OSError, IndexError, ValueError):
            return None

    def _sample(self) -> dict[int, float]:
        out = {}
        for host in self.hosts:
            for pid in host.pids():
                cpu = self._cpu(pid)
                if cpu is not None:
                    out[pid] = cpu
        return out

    def start(self) -> None:
        self.base = self._sample()
        self.last = dict(self.base)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.last.update(self._sample())

    def stop(self) -> float:
        self._stop.set()
        self.thread.join()
        self.last.update(self._sample())
        return sum(cpu - self.base.get(pid, 0.0) for pid, cpu in self.last.items())


def recipe_cmd(warc_glob: str, out: Path, limit: int | None) -> list[str]:
    inputs = json.dumps([{"path": warc_glob, "format": "warc", "source": "commoncrawl"}])
    cmd = [sys.executable, "-m", "curator", "run", str(REPO / "pipelines" / "commoncrawl.yaml"),
           "--set", f"inputs={inputs}", "--set", f"output.path={out}"]
    return cmd + (["--limit", str(limit)] if limit else [])


def fuzzy_spec(pile: Path, out: Path) -> dict:
    if pile.is_dir():
        from bench_scale import spec

        return spec(pile, out, [{"stage": "fuzzy_dedup"}])
    return {"name": "fuzzy", "inputs": [{"path": str(pile)}], "stages": [{"stage": "fuzzy_dedup"}],
            "output": {"path": str(out), "shard_size_mb": 256}}


class S3Server:
    """``moto_server`` on host A (its address, a free port), reachable from every node; a bucket ``bench``.
    Its endpoint and test keys are the ``env`` the nodes need (set before the cluster starts)."""

    def __init__(self, cluster: TwoHosts) -> None:
        self.cluster, self.port = cluster, free_port()
        self.url = f"http://{cluster.a.ip}:{self.port}"
        self.env = {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1"}
        cluster.node_extra_env.update(self.env)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        moto = str(Path(sys.executable).with_name("moto_server"))
        self.proc = subprocess.Popen([*self.cluster.a.prefix(), moto, "-H", self.cluster.a.ip, "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.python("import boto3, time\nfor _ in range(100):\n    try:\n        boto3.client('s3').create_bucket("
                    "Bucket='bench'); break\n    except Exception: time.sleep(0.2)")

    def python(self, code: str) -> str:
        return self.cluster.a.run([sys.executable, "-c", code], **self.env).stdout

    def read_json(self, url: str) -> dict:
        return json.loads(self.python(f"import fsspec; print(fsspec.open({url!r}, 'r').open().read())"))

    def stop(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


def _read_local(path: str) -> dict:
    return json.loads(Path(path).read_text())


def run_once(cluster: TwoHosts, cmd: list[str], out: Path | str, read_json=_read_local) -> dict:
    meter = CpuMeter([cluster.a, cluster.b])
    sid = f"bench-{uuid.uuid4().hex[:8]}"
    meter.start()
    t0 = time.perf_counter()
    cluster.submit(sid, cmd)
    job = cluster.wait_job(sid, timeout=3600)
    wall = time.perf_counter() - t0
    cpu = meter.stop()
    if job["status"] != "SUCCEEDED":
        raise RuntimeError(f"job {sid} {job['status']}:\n{cluster.job_logs(sid)[-3000:]}")
    stats, manifest = read_json(f"{out}/stats.json"), read_json(f"{out}/manifest.json")
    run_s = stats["finished_at"] - stats["started_at"]
    docs = manifest["counts"]["input_docs"]
    return {"run_s": run_s, "job_s": wall, "cpu_s": cpu, "docs": docs, "docs_per_s": docs / run_s,
            "kept": manifest["counts"]["kept"]}


def median_row(runs: list[dict]) -> dict:
    row = {k: statistics.median(r[k] for r in runs) for k in ("run_s", "job_s", "cpu_s", "docs_per_s")}
    row.update(docs=runs[0]["docs"], kept=runs[0]["kept"], n=len(runs))
    assert len({(r["docs"], r["kept"]) for r in runs}) == 1, "runs of one arm disagree on their counts"
    return row


def table(rows: list[dict]) -> str:
    base = {r["work"]: r["docs_per_s"] for r in rows if r["arm"] == "1x2"}
    lines = ["| work | arm | nodes x CPUs | input docs | kept | runs | run s (median) | job s | docs/s | CPU-s |"
             " docs/s vs 1x2 (recipe-s3: vs recipe 1x2) |", "|" + " --- |" * 11]
    for r in rows:
        ref = "recipe" if r["work"] == "recipe-s3" else r["work"]  # S3 output against local output
        ratio = f"{r['docs_per_s'] / base[ref]:.2f}" if ref in base else "-"
        lines.append(f"| {r['work']} | {r['arm']} | {r['nodes']} x {r['cpus']} | {r['docs']} | {r['kept']} | {r['n']} |"
                     f" {r['run_s']:.1f} | {r['job_s']:.1f} | {r['docs_per_s']:.2f} | {r['cpu_s']:.1f} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--warc", help="glob of WARC files (default: the bundled sample cut into --parts files)")
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--pile", type=Path, help="fuzzy-dedup input: corpus folder or file (default: "
                    "/work/data/scale/x4 if it exists, else the bundled sample.jsonl.zst; with --smoke, the sample)")
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--work", nargs="+", default=["recipe", "fuzzy", "recipe-s3"],
                    choices=["recipe", "fuzzy", "recipe-s3"],
                    help="recipe-s3: the recipe with its output on S3 (moto_server on host A), on the 1x2 arm only")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, help="read only the first N documents of each input file (recipe)")
    ap.add_argument("--footer-actors", type=int,
                    help="RAY_DATA_PARQUET_FOOTER_NUM_ACTORS on the nodes (default: Ray's own, 32)")
    ap.add_argument("--smoke", action="store_true", help="a quick check: one repeat, --limit 20")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cluster.md")
    ap.add_argument("--keep", action="store_true", help="keep the outputs (default: deleted at the end)")
    args = ap.parse_args()
    if args.smoke:
        args.repeats, args.limit = 1, args.limit or 20
    if args.pile is None:
        scale = Path("/work/data/scale/x4")
        args.pile = scale if scale.is_dir() and not args.smoke else REPO / "examples" / "data" / "sample.jsonl.zst"

    tmp = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    warc = args.warc or str(tmp / "in" / "*.warc.gz")
    if not args.warc:
        split_warc(SAMPLE, tmp / "in", args.parts)
    fuzzy_path = tmp / "fuzzy.json"
    refusal = netns_refusal()
    env = {"RAY_DATA_PARQUET_FOOTER_NUM_ACTORS": str(args.footer_actors)} if args.footer_actors else {}
    rows: list[dict] = []
    runs_of: dict[tuple[str, str], list[dict]] = {}
    for arm in args.arms:
        nodes, cpus = ARMS[arm]
        cluster = TwoHosts(cpus=cpus, nodes=nodes, use_netns=refusal is None, env=env)
        works = [w for w in args.work if w != "recipe-s3" or arm == "1x2"]
        s3 = S3Server(cluster) if "recipe-s3" in works else None
        with cluster:
            if s3:
                s3.start()
            try:
                for i in range(args.repeats):  # the kinds of work interleaved, so a slow spell hits them all
                    for work in works:
                        out: Path | str = tmp / f"{arm}-{work}-{i}"
                        if work == "recipe-s3":
                            out = f"s3://bench/{arm}-{i}"
                        if work.startswith("recipe"):
                            cmd = recipe_cmd(warc, out, args.limit)
                        else:
                            fuzzy_path.write_text(json.dumps(fuzzy_spec(args.pile, out)))
                            cmd = [sys.executable, "-m", "curator", "run", str(fuzzy_path)]
                        run = run_once(cluster, cmd, out, s3.read_json if work == "recipe-s3" else _read_local)
                        runs_of.setdefault((arm, work), []).append(run)
                        print(f"{work} {arm} run {i + 1}: {json.dumps(run)}", flush=True)
            finally:
                if s3:
                    s3.stop()
        rows += [{"work": work, "arm": arm, "nodes": nodes, "cpus": cpus, **median_row(runs_of[(arm, work)])}
                 for work in works]
    hosts = "two network namespaces (veth)" if refusal is None else f"127.0.0.1 only ({refusal})"
    text = (f"# Cluster: one Ray node vs two\n\n`python bench/bench_cluster.py {' '.join(sys.argv[1:])}` on "
            f"{platform.node()} ({os.cpu_count()} CPUs), hosts: {hosts}; recipe input `{warc}`"
            f"{f' (--limit {args.limit})' if args.limit else ''}, fuzzy input `{args.pile}`; footer actors: "
            f"{args.footer_actors or 'Ray default'}. Medians of the runs.\n\n{table(rows)}\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
