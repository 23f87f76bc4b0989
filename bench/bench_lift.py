"""Curation lift: the same small GPT trained on raw vs curated data from one crawl, evaluated alike.

Phases (run from the repository root; each writes into ``--work``, default ``bench/.lift``):

``crawl``     serves this machine's ``/usr/share/doc`` on 127.0.0.1 (``python -m http.server``) and
              crawls it with ``wget -r --warc-file`` into ``WORK/crawl/docs.warc.gz`` (HTML pages and the
              server's directory listings). More pages, in many languages, come from Debian's
              documentation packages: ``apt-get install python3-doc debian-reference debian-handbook
              maint-guide* developers-reference* debian-faq* git-doc postgresql-doc-15 sqlite3-doc``.
``datasets``  runs ``curator run`` on ``pipelines/lift/raw.yaml`` (extraction only) and
              ``pipelines/lift/curated.yaml`` (the commoncrawl recipe), pointed at the WARC, into
              ``WORK/raw`` and ``WORK/curated``. Both split by a hash of the page URL, so a page is on the
              same side in both. Starts Ray: run it under ``flock /tmp/curator-ray.lock``.
``neutral``   the neutral held-out text neither pipeline saw: this machine's English manual pages
              (``/usr/share/man/man1`` and ``man8``, rendered with ``man -l``; pages of packages whose HTML
              was crawled are left out), as ``WORK/neutral/neutral.parquet``, and the multiple-choice
              set built from them (``WORK/pack/mc.jsonl``: a passage, its true next sentence and three
              next sentences of other pages); ``bench/lift_mc.py`` holds the generator.
``pack``      one tokenizer for both arms (a byte-level BPE trained on equal shares of both train
              splits), and token files for the GPU: each arm's train split (the larger one sampled down,
              by whole documents in a seeded random order, the last one cut, to exactly the smaller
              one's token count; both then train on the same number of tokens), raw once more at its
              full size in the same order (``raw_full``, capped at ``--full-tokens``, the training
              budget), both eval splits and the neutral text; ``WORK/pack/meta.json`` counts tokens,
              documents and UTF-8 bytes of every file (for bits per byte).
``train``     (the GPU) trains the same GPT on each arm (raw and curated at equal unique tokens, and
              raw_full: same seed, schedule and token budget, so curated and size-matched raw repeat
              their data and raw_full hardly does), then evaluates each on the curated eval split, the
              raw eval split and the neutral text (loss, perplexity, bits per byte), scores the
              multiple-choice set, samples at temperature 0.7 from fixed prompts, plots the loss
              curves (``lift_loss.png``) and writes ``lift.json``; exports the curated model
              as a Hugging Face folder (bf16, tarred in parts) for lm-eval.
``smoke``     the whole chain on the bundled sample (``examples/data/sample.warc.gz``) with a tiny model
              on the CPU: what the CI test runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

T0 = time.time()
ARMS = ("raw", "curated")  # the two datasets
# the trainings: raw sampled down to curated's size, curated, and raw at its full size (up to the budget)
TRAIN_ARMS = ("raw", "curated", "raw_full")
PROMPTS = ["The configuration file", "To install the package,", "This chapter describes how",
           "If the command fails"]


def say(*a) -> None:
    print(f"[{time.time() - T0:7.1f}s]", *a, flush=True)


# ---------------------------------------------------------------------------------------------- crawl
def crawl(work: Path, root: str = "/usr/share/doc", port: int = 8731) -> Path:
    """A real WARC of this machine's HTML documentation, served on 127.0.0.1 and crawled with wget."""
    out = work / "crawl"
    out.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        p = subprocess.run(["wget", "-r", "-l", "30", "--no-parent", "-e", "robots=off", "-A", "html,htm",
                            "--warc-file", str(out / "docs"), "-nv", "-P", str(out / "site"),
                            f"http://127.0.0.1:{port}/"], capture_output=True, text=True)
        if p.returncode not in (0, 8):  # 8: some pages answered an error (broken links): expected
            raise RuntimeError(f"wget failed ({p.returncode}): {p.stderr[-2000:]}")
    finally:
        server.terminate()
        server.wait()
    shutil.rmtree(out / "site", ignore_errors=True)
    warc = out / "docs.warc.gz"
    say(f"crawl: {warc} ({warc.stat().st_size / 1e6:.1f} MB)")
    return warc


# ------------------------------------------------------------------------------------------- datasets
def write_spec(arm: str, warc: Path, out: Path, dest: Path) -> Path:
    """pipelines/lift/<arm>.yaml with its input and output pointed elsewhere."""
    import yaml

    spec = yaml.safe_load((REPO / "pipelines" / "lift" / f"{arm}.yaml").read_text())
    spec["inputs"][0]["path"] = str(warc)
    spec["output"]["path"] = str(out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(spec, sort_keys=False))
    return dest


def datasets(work: Path, warc: Path, arms=ARMS, extra_env: dict | None = None) -> dict:
    """``curator run`` of both arms; returns each run's wall time and its stats.json funnel."""
    res = {}
    for arm in arms:
        spec = write_spec(arm, warc, work / arm, work / "specs" / f"{arm}.yaml")
        shutil.rmtree(work / arm, ignore_errors=True)
        t = time.time()
        p = subprocess.run([sys.executable, "-m", "curator", "run", str(spec)], capture_output=True, text=True,
                           env={**os.environ, **(extra_env or {})}, cwd=REPO)
        if p.returncode:
            raise RuntimeError(f"curator run {arm} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        res[arm] = {"wall_s": time.time() - t, "docs": _count_docs(work / arm)}
        say(f"datasets: {arm} in {res[arm]['wall_s']:.0f}s: {res[arm]['docs']}")
    (work / "datasets.json").write_text(json.dumps(res, indent=2))
    return res


def _count_docs(out: Path) -> dict:
    import pyarrow.parquet as pq

    return {split: sum(pq.ParquetFile(f).metadata.num_rows for f in sorted((out / split).glob("*.parquet")))
            for split in ("train", "eval")}


def split_texts(out: Path, split: str) -> list[str]:
    import pyarrow.parquet as pq

    texts = []
    for f in sorted((out / split).glob("*.parquet")):
        texts += [t for t in pq.read_table(f, columns=["text"])["text"].to_pylist() if t]
    return texts


# -------------------------------------------------------------------------------------------- neutral
# man pages of packages whose HTML documentation was crawled: not neutral
CRAWLED = ("git", "pg", "psql", "postgres", "sqlite", "python", "pydoc", "valgrind", "node", "npm", "xslt",
           "socat", "ninja", "ffi")


def man_texts(limit: int, seed: int = 0, sections=("man1", "man8")) -> list[tuple[str, str]]:
    """(name, plain text) of English manual pages, rendered by man(1), in a seeded random order."""
    pages = []
    for sec in sections:
        for p in sorted((Path("/usr/share/man") / sec).glob("*.gz")):
            if not p.name.lower().startswith(CRAWLED):
                pages.append(p)
    random.Random(seed).shuffle(pages)
    out = []
    env = {**os.environ, "MANWIDTH": "80", "LANG": "C.UTF-8"}
    for p in pages:
        if len(out) >= limit:
            break
        r = subprocess.run(["man", "-l", "-Tutf8", str(p)], capture_output=True, env=env)
        if r.returncode:
            continue
        text = subprocess.run(["col", "-bx"], input=r.stdout, capture_output=True).stdout.decode("utf-8", "replace")
        text = "\n".join(ln.rstrip() for ln in text.splitlines()).strip()
        if len(text) >= 1500:
            out.append((p.name, text))
    return out


def neutral(work: Path, limit: int, mc_items: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.lift_mc import build_mc

    pages = man_texts(limit)
    (work / "neutral").mkdir(parents=True, exist_ok=True)
    half = len(pages) // 2  # first half: the neutral text for loss; second half: the MC set's documents
    pq.write_table(pa.table({"id": [n for n, _ in pages[:half]], "text": [t for _, t in pages[:half]]}),
                   work / "neutral" / "neutral.parquet")
    items = build_mc([t for _, t in pages[half:]], mc_items, seed=0)
    (work / "pack").mkdir(parents=True, exist_ok=True)
    (work / "pack" / "mc.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    res = {"neutral_pages": half, "mc_pages": len(pages) - half, "mc_items": len(items)}
    say(f"neutral: {res}")
    return res


# ----------------------------------------------------------------------------------------------- pack
def pack(work: Path, vocab: int, full_tokens: int, seed: int = 0) -> dict:
    """Shared tokenizer + token files of every split for the GPU (see the module docstring)."""
    import numpy as np
    import pyarrow.parquet as pq

    from trainer.data import encode_texts
    from trainer.tokenizer import eot_id, file_hash, train_tokenizer

    dest = work / "pack"
    dest.mkdir(parents=True, exist_ok=True)
    texts = {f"{arm}_{s}": split_texts(work / arm, s) for arm in ARMS for s in ("train", "eval")}
    texts["neutral"] = [t for t in pq.read_table(work / "neutral" / "neutral.parquet")["text"].to_pylist() if t]
    rng = random.Random(seed)
    # the tokenizer: equal character budgets of both train splits
    budget = min(sum(map(len, texts["raw_train"])), sum(map(len, texts["curated_train"])))
    mix = []
    for arm in ARMS:
        docs, n = texts[f"{arm}_train"][:], 0
        rng.shuffle(docs)
        for d in docs:
            if n >= budget:
                break
            mix.append(d)
            n += len(d)
    rng.shuffle(mix)
    tok = train_tokenizer(mix, vocab, dest / "tokenizer.json")
    eot = eot_id(tok)
    arrays = {k: encode_texts(tok, v, eot) for k, v in texts.items()}
    # the larger train split sampled down (whole documents, seeded) to the smaller one's token count
    n_raw, n_cur = len(arrays["raw_train"]), len(arrays["curated_train"])
    big = "raw_train" if n_raw > n_cur else "curated_train"
    target = min(n_raw, n_cur)
    order = list(range(len(texts[big])))
    rng.shuffle(order)
    keep, n = [], 0
    for i in order:
        if n >= target:
            break
        keep.append(i)
        n += len(tok.encode(texts[big][i], add_special_tokens=False).ids) + 1
    keep.sort()
    meta = {"vocab_size": tok.get_vocab_size(), "eot_id": eot, "tokenizer_hash": file_hash(dest / "tokenizer.json"),
            "sampled_down": big, "before_sampling": {"raw_train": n_raw, "curated_train": n_cur}, "files": {}}
    if big == "raw_train":  # raw at its full size too, in the same seeded order, up to the budget
        full = encode_texts(tok, [texts[big][i] for i in order], eot)[:full_tokens]
        arrays["raw_full_train"], texts["raw_full_train"] = full, [texts[big][i] for i in order]
    texts[big] = [texts[big][i] for i in keep]
    arrays[big] = encode_texts(tok, texts[big], eot)[:target]  # the last document cut: equal token counts
    for k, arr in arrays.items():
        arr.astype(np.uint16).tofile(dest / f"{k}.bin")
        docs = int((arr == eot).sum()) if k == "raw_full_train" else len(texts[k])
        nbytes = sum(len(t.encode("utf-8")) for t in texts[k][:docs])
        meta["files"][k] = {"tokens": int(len(arr)), "documents": docs, "bytes": nbytes}
    (dest / "meta.json").write_text(json.dumps(meta, indent=2))
    say("pack:", json.dumps(meta["files"]))
    return meta


def run_folder(pack_dir: Path, arm: str, dest: Path) -> Path:
    """A prepared-token folder the trainer reads (``--data``): this arm's train split, its own eval split."""
    import numpy as np

    meta = json.loads((pack_dir / "meta.json").read_text())
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(pack_dir / "tokenizer.json", dest / "tokenizer.json")
    shutil.copy(pack_dir / f"{arm}_train.bin", dest / "train.bin")
    ev = "raw" if arm == "raw_full" else arm
    shutil.copy(pack_dir / f"{ev}_eval.bin", dest / "eval.bin")
    f = meta["files"]
    (dest / "meta.json").write_text(json.dumps({
        "dtype": np.dtype(np.uint16).name, "vocab_size": meta["vocab_size"], "eot_id": meta["eot_id"],
        "manifest_hash": None, "tokenizer_hash": meta["tokenizer_hash"], "source": f"lift/{arm}",
        "split_here": False, "train": {"tokens": f[f"{arm}_train"]["tokens"]},
        "eval": {"tokens": f[f"{ev}_eval"]["tokens"]},
    }, indent=2))
    return dest


# ---------------------------------------------------------------------------------------------- train
def train(a) -> dict:
    """Both trainings and every evaluation (the GPU call; also the smoke run on the CPU)."""
    import torch

    from trainer.checkpoint import load_for_inference
    from trainer.generate import generate
    from trainer.metrics import read_metrics
    from trainer.train import TrainConfig, run

    pack_dir, out = Path(a.pack), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = json.loads((pack_dir / "meta.json").read_text())
    runs = Path(a.runs)
    res: dict = {"config": vars(a), "pack": meta, "arms": {}, "repeats": []}
    from bench.lift_mc import shortest_choice_accuracy

    mc_items = [json.loads(ln) for ln in (pack_dir / "mc.jsonl").read_text().splitlines() if ln.strip()]
    res["mc_baselines"] = {"chance": sum(1 / len(i["choices"]) for i in mc_items) / max(1, len(mc_items)),
                           "shortest_choice": shortest_choice_accuracy(mc_items)}
    if torch.cuda.is_available():
        res["device"] = torch.cuda.get_device_name(0)
    res["torch"] = torch.__version__
    device = torch.device(a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    for k, seed in enumerate([a.seed] + list(a.extra_seeds)):
        for arm in TRAIN_ARMS:
            if not (pack_dir / f"{arm}_train.bin").exists():
                continue
            left = a.budget - (time.time() - T0)
            if k and left < a.repeat_need:
                say(f"skip seed {seed} {arm}: {left:.0f}s left")
                continue
            rd = runs / (arm if k == 0 else f"{arm}_s{seed}")
            data = run_folder(pack_dir, arm, runs / f"{arm}_data")
            cfg = TrainConfig(
                data=str(data), run_dir=str(rd), model=a.model, block_size=a.block, batch_size=a.batch,
                max_steps=a.steps, warmup_steps=max(1, a.steps // 20), lr=a.lr, min_lr=a.lr / 10,
                dropout=a.dropout, bias=False, eval_interval=a.eval_interval, eval_iters=a.eval_iters,
                log_interval=a.log_interval, ckpt_interval=0, seed=seed, device=a.device, compile=a.compile,
                compile_scope="blocks", plot=False, tensorboard=False,
            )
            t = time.time()
            summary = run(cfg)
            rec = {"seed": seed, "arm": arm, "train_s": time.time() - t, "tokens": summary["tokens"],
                   "epochs": summary["tokens"] / meta["files"][f"{arm}_train"]["tokens"],
                   "curve": read_metrics(rd / "metrics.jsonl")}
            say(f"train {arm} seed {seed}: {summary['tokens'] / 1e6:.1f}M tokens in {rec['train_s']:.0f}s")
            model, tok, _ = load_for_inference(rd / "ckpt.pt", device)
            rec["eval"] = evaluate_arm(model, tok, pack_dir, meta, a, device)
            say(f"eval {arm} seed {seed}: " + ", ".join(
                f"{n} {v['loss']:.3f}" for n, v in rec["eval"].items() if "loss" in v)
                + f", mc {rec['eval']['mc']['accuracy']}")
            if k == 0:
                g = torch.Generator(device=device).manual_seed(0)
                rec["samples"] = []
                for p in PROMPTS:
                    ids = torch.tensor([tok.encode(p, add_special_tokens=False).ids], device=device)
                    o = generate(model, ids, a.sample_tokens, temperature=0.7, generator=g, stop_id=meta["eot_id"])
                    rec["samples"].append(tok.decode(o[0].tolist()))
                res["arms"][arm] = rec
            else:
                res["repeats"].append({key: v for key, v in rec.items() if key != "curve"})
            del model
            (out / "lift.json").write_text(json.dumps(res, indent=2, default=str))
    plot(res, out / "lift_loss.png")
    if a.export:
        from trainer.export import export

        hf = runs / "curated_hf"
        export(runs / "curated" / "ckpt.pt", hf, dtype="bfloat16")
        res["export"] = tar_parts(hf, out, "curated_hf", a.part_mb)
    (out / "lift.json").write_text(json.dumps(res, indent=2, default=str))
    say("done")
    return res


def evaluate_arm(model, tok, pack_dir: Path, meta: dict, a, device) -> dict:
    """Loss, perplexity and bits per byte on every held-out file; the multiple-choice accuracy."""
    import math

    from trainer.data import eval_windows, open_tokens
    from trainer.evaluate import mean_loss, score_multiple_choice

    ev = {}
    for name in ("curated_eval", "raw_eval", "neutral"):
        tokens = open_tokens(pack_dir / f"{name}.bin", "uint16")
        loss, n = mean_loss(model, eval_windows(tokens, a.block, a.batch, 0), device)
        f = meta["files"][name]
        scored_bytes = f["bytes"] * n / max(1, f["tokens"] - 1)  # whole windows only: their share of bytes
        ev[name] = {"loss": loss, "perplexity": math.exp(loss), "tokens": n,
                    "bits_per_byte": loss * n / math.log(2) / scored_bytes}
    ev["mc"] = score_multiple_choice(model, tok, pack_dir / "mc.jsonl", device)
    return ev


def tar_parts(folder: Path, out: Path, name: str, part_mb: float) -> list[str]:
    """folder as a tar split into parts of at most part_mb (the device returns files of 16 MiB at most)."""
    tar = out.parent / f"{name}.tar"
    with tarfile.open(tar, "w") as t:
        t.add(folder, arcname=name)
    data, step, parts = tar.read_bytes(), int(part_mb * 2**20), []
    for i in range(0, len(data), step):
        p = out / f"{name}.tar.{i // step:02d}"
        p.write_bytes(data[i:i + step])
        parts.append(p.name)
    tar.unlink()
    return parts


def plot(res: dict, png: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for arm, color in zip(TRAIN_ARMS, ("tab:red", "tab:blue", "tab:orange"), strict=True):
        if arm not in res["arms"]:
            continue
        curve = res["arms"][arm]["curve"]
        tr = [(r["tokens"] / 1e6, r["loss"]) for r in curve if "loss" in r]
        ev = [(r["step"], r["eval_loss"]) for r in curve if "eval_loss" in r]
        ax.plot(*zip(*tr, strict=True), color=color, alpha=0.8, label=f"{arm}: train loss")
        if ev:
            tok_per_step = tr[-1][0] / max(1, curve[-1]["step"]) if tr else 0
            ax.plot([s * tok_per_step for s, _ in ev], [v for _, v in ev], "o--", color=color,
                    label=f"{arm}: eval loss (own eval split)")
    ax.set_xlabel("training tokens (M)")
    ax.set_ylabel("cross-entropy (nats/token, shared tokenizer)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- smoke
def smoke(work: Path, extra_env: dict | None = None) -> dict:
    """The whole chain on the bundled sample, tiny and on the CPU (the CI test)."""
    warc = REPO / "examples" / "data" / "sample.warc.gz"
    datasets(work, warc, extra_env=extra_env)
    neutral(work, limit=40, mc_items=12)
    pack(work, vocab=512, full_tokens=4000)
    ns = argparse.Namespace(pack=str(work / "pack"), out=str(work / "result"), runs=str(work / "runs"),
                            model="tiny", block=32, batch=4, steps=6, lr=3e-3, dropout=0.0, eval_interval=3,
                            eval_iters=2, log_interval=1, seed=0, device="cpu", compile=False, sample_tokens=8,
                            export=False, part_mb=15.0, extra_seeds=[1], budget=1e9, repeat_need=0.0)
    return train(ns)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("phase", choices=["crawl", "datasets", "neutral", "pack", "train", "smoke"])
    ap.add_argument("--work", default=str(REPO / "bench" / ".lift"), help="working folder")
    ap.add_argument("--warc", help="datasets: the WARC (default WORK/crawl/docs.warc.gz)")
    ap.add_argument("--man-pages", type=int, default=1200, help="neutral: manual pages to render")
    ap.add_argument("--mc-items", type=int, default=400, help="neutral: multiple-choice questions")
    ap.add_argument("--vocab", type=int, default=8192, help="pack: shared tokenizer's vocabulary")
    ap.add_argument("--full-tokens", type=int, default=8_400_000, help="pack: raw_full's token cap")
    ap.add_argument("--pack", help="train: the pack folder (default WORK/pack)")
    ap.add_argument("--out", help="train: results folder (default WORK/result)")
    ap.add_argument("--runs", default="/tmp/lift_runs", help="train: run folders")
    ap.add_argument("--model", default="small", help="train: model preset")
    ap.add_argument("--block", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--eval-interval", type=int, default=250)
    ap.add_argument("--eval-iters", type=int, default=20)
    ap.add_argument("--log-interval", type=int, default=25)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--extra-seeds", type=int, nargs="*", default=[], help="train: repeat both arms with these")
    ap.add_argument("--budget", type=float, default=1e9, help="train: seconds; repeats are skipped past it")
    ap.add_argument("--repeat-need", type=float, default=60.0, help="train: seconds a repeat needs")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--sample-tokens", type=int, default=60)
    ap.add_argument("--export", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--part-mb", type=float, default=15.0)
    a = ap.parse_args()
    work = Path(a.work)
    if a.phase == "crawl":
        crawl(work)
    elif a.phase == "datasets":
        datasets(work, Path(a.warc) if a.warc else work / "crawl" / "docs.warc.gz")
    elif a.phase == "neutral":
        neutral(work, a.man_pages, a.mc_items)
    elif a.phase == "pack":
        pack(work, a.vocab, a.full_tokens)
    elif a.phase == "train":
        a.pack = a.pack or str(work / "pack")
        a.out = a.out or str(work / "result")
        train(a)
    else:
        print(json.dumps(smoke(work), indent=2, default=str)[-3000:])


if __name__ == "__main__":
    main()
