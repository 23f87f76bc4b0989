"""Trainer benchmark on a GPU: throughput/MFU of our GPT 124M against transformers' GPT-2, and DDP scaling.

Subcommands (run from the repository root):

``make-data DIR``  (here, on the CPU; once) builds a real-text job folder ``DIR/job`` (Parquet of this
    machine's Python sources and docs, with a manifest) and its prepared token files ``DIR/prep``
    (a 50257-token byte-level BPE trained on it), to carry to the GPU machine.

``single --out OUT``  (one GPU) measures the bf16 matmul peak, then trains for a few steps on the same
    random token batches: transformers' GPT2LMHeadModel (sdpa, bf16 autocast, torch.compile, fused
    AdamW) at batch 16 x 1024, and our model with each lever (loss on float32 logits vs the fused chunked
    linear+cross-entropy, the SDPA kernel, the compile scope, the batch size). Median step time of the
    timed steps (CUDA events) gives tokens/s; MFU = tokens/s * (6N + 12*L*d*T) / measured peak, with N
    counted the same way for both models (real vocabulary 50257, no position table). Ends with a
    torch.profiler breakdown of our best configuration. Writes OUT/single.json.

``presets --out OUT``  (one GPU) the larger presets (350M, 1.3B, 2.7B; no biases, bf16, regional
    compile, fused loss) at the sizes and batches of ``--plans``, each with activation checkpointing
    off, selective (matmul outputs kept; attention and pointwise ops recomputed) or full, on random
    token batches: tokens/s, MFU against the bf16 matmul peak measured in the same call (recomputation
    not counted), peak memory. Writes OUT/presets.json.

``scaling --data DIR --out OUT``  runs the trainer itself (``python -m trainer``) on the real-text
    shards: 1 GPU (grad accumulation 2) and 2 GPUs with DDP under torchrun (accumulation 1), the same
    per-GPU micro-batch and the same global batch and seed, so the loss curves must match at equal
    tokens; and once with a synthetic batch fixed on the device, so the data loader's share shows.
    Writes OUT/scaling.json.

Every phase checks a deadline (``--budget`` seconds) and is skipped, not half-run, when time is short.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

T0 = time.time()


def say(*a) -> None:
    print(f"[{time.time() - T0:6.1f}s]", *a, flush=True)


# ----------------------------------------------------------------------------------------------- data
def make_data(out: Path, vocab: int, max_mb: float) -> None:
    """A real-text job folder and its prepared shards (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainer.data import prepare

    job = out / "job"
    (job / "data").mkdir(parents=True, exist_ok=True)
    roots = [Path("/usr/lib/python3.11"), Path("/usr/share/doc"), Path("/usr/share/common-licenses")]
    ids, texts, total = [], [], 0
    for root in roots:
        for p in sorted(root.rglob("*")):
            if not p.is_file() or p.suffix not in (".py", ".txt", ".rst", "") or p.stat().st_size > 400_000:
                continue
            try:
                t = p.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if len(t) < 200:
                continue
            ids.append(str(p))
            texts.append(t)
            total += len(t)
            if total > max_mb * 1e6:
                break
        if total > max_mb * 1e6:
            break
    pq.write_table(pa.table({"id": ids, "text": texts}), job / "data" / "part-0.parquet",
                   row_group_size=2000, compression="zstd")
    (job / "manifest.json").write_text(json.dumps({"documents": len(ids), "chars": total}))
    meta = prepare(job, out / "prep", vocab_size=vocab, eval_fraction=0.02, backend="pool")
    say(f"{len(ids)} documents, {total / 1e6:.1f} MB text; meta: {json.dumps(meta)}")


# --------------------------------------------------------------------------------------------- single
def matmul_peak(torch, n: int = 8192, reps: int = 30) -> float:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    times = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        a @ b
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    return 2 * n**3 / statistics.median(times) / 1e12


def hf_gpt2(torch):
    from transformers import AutoModelForCausalLM, GPT2Config

    cfg = GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa").cuda()
    say("transformers attention:", getattr(model.config, "_attn_implementation", "?"))
    return model


def time_training(torch, model, step_fn, batches, warmup: int, steps: int) -> dict:
    """Warm up (compiles), then time each step with CUDA events; median step time."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4,
                            weight_decay=0.1, betas=(0.9, 0.95), fused=True)
    torch.cuda.reset_peak_memory_stats()
    t = time.time()
    losses = []
    for i in range(warmup):
        losses.append(step_fn(model, opt, batches[i % len(batches)]))
    torch.cuda.synchronize()
    compile_s = time.time() - t
    times = []
    for i in range(steps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        losses.append(step_fn(model, opt, batches[(warmup + i) % len(batches)]))
        e.record()
        times.append((s, e))
    torch.cuda.synchronize()
    dts = [s.elapsed_time(e) / 1e3 for s, e in times]
    return {"step_s": statistics.median(dts), "step_s_min": min(dts), "step_s_max": max(dts),
            "warmup_s": compile_s, "mem_gib": torch.cuda.max_memory_allocated() / 2**30,
            "first_loss": float(losses[0]), "last_loss": float(losses[-1])}


def make_step(torch, F, kind: str):
    def step(model, opt, batch):
        x, y = batch
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if kind == "hf":
                logits = model(input_ids=x).logits
                loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1))
            else:
                loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()
    return step


def single(a) -> None:
    import torch
    import torch.nn.functional as F

    from trainer.device import sdpa_context
    from trainer.model import GPT, preset

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    out = Path(a.out)
    res: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                 "cuda": torch.version.cuda, "nccl": ".".join(map(str, torch.cuda.nccl.version())),
                 "runs": []}
    try:
        import transformers

        res["transformers"] = transformers.__version__
    except ImportError:
        res["transformers"] = None
    say("device", res["device"], "torch", res["torch"], "cuda", res["cuda"])
    res["peak_tflops"] = matmul_peak(torch)
    res["datasheet_tflops"] = 989.4  # H100 SXM dense bf16
    say(f"bf16 matmul peak {res['peak_tflops']:.0f} TFLOP/s (datasheet 989 dense)")
    T, V = 1024, 50257
    fpt = GPT(preset("124M", block_size=T, vocab_size=V)).flops_per_token(T)
    res["flops_per_token"] = fpt
    g = torch.Generator(device="cuda").manual_seed(0)

    def batches(B: int, n: int = 4):
        out_ = []
        for _ in range(n):
            w = torch.randint(0, V, (B, T + 1), device="cuda", generator=g)
            out_.append((w[:, :-1].contiguous(), w[:, 1:].contiguous()))
        return out_

    def record(name: str, B: int, r: dict, **extra) -> dict:
        r.update(name=name, batch=B, tok_s=B * T / r["step_s"], **extra)
        r["mfu"] = r["tok_s"] * fpt / (res["peak_tflops"] * 1e12)
        res["runs"].append(r)
        say(f"{name:<44} B={B:<3} {r['tok_s'] / 1e3:7.1f}k tok/s  MFU {100 * r['mfu']:5.1f}%  "
            f"mem {r['mem_gib']:5.1f} GiB  warmup {r['warmup_s']:5.1f}s  loss {r['first_loss']:.3f}"
            f"->{r['last_loss']:.3f}")
        (out / "single.json").write_text(json.dumps(res, indent=2))
        return r

    def left() -> float:
        return a.budget - (time.time() - T0)

    def ours(name, B, *, loss_impl="fused", sdpa="auto", scope="blocks", bias=True, need=60.0, chunk=8192,
             **extra):
        if left() < need:
            say(f"skip {name} B={B}: {left():.0f}s left")
            return None
        torch._dynamo.reset()
        torch.manual_seed(0)
        model = GPT(preset("124M", block_size=T, vocab_size=V, loss_impl=loss_impl, bias=bias,
                           loss_chunk=chunk)).cuda()
        if scope == "blocks":
            model.compile_blocks()
            fn = model
        else:
            model.compile_loss()
            fn = torch.compile(model)
        try:
            with sdpa_context(sdpa):
                r = time_training(torch, fn, make_step(torch, F, "ours"), batches(B), a.warmup, a.steps)
        except torch.OutOfMemoryError:
            say(f"{name} B={B}: out of memory")
            res["runs"].append({"name": name, "batch": B, "oom": True})
            return None
        except Exception:
            say(f"{name} B={B} failed:\n" + traceback.format_exc())
            res["runs"].append({"name": name, "batch": B, "error": traceback.format_exc()[-500:]})
            return None
        finally:
            del model, fn
            torch.cuda.empty_cache()
        return record(name, B, r, loss_impl=loss_impl, sdpa=sdpa, scope=scope, bias=bias, chunk=chunk,
                      **extra)

    # the peer: transformers GPT-2, compiled whole, batch 16
    hf_run = None
    try:
        torch.manual_seed(0)
        hf = torch.compile(hf_gpt2(torch))
        r = time_training(torch, hf, make_step(torch, F, "hf"), batches(16), a.warmup, a.steps)
        hf_run = record("transformers GPT-2 (sdpa, bf16, compiled)", 16, r)
        del hf
    except Exception:
        say("transformers baseline failed:\n" + traceback.format_exc())
    torch.cuda.empty_cache()

    # our levers at batch 16 (the transformers comparison is at this batch)
    floor = ours("ours: float32-logits loss", 16, loss_impl="plain") if a.plain else None
    fused = ours("ours: fused chunked linear+CE", 16)
    nobias = ours("ours: fused CE, no biases", 16, bias=False)
    cands = [r for r in (floor, fused, nobias) if r]
    # batch size, with and without biases
    sweep = {}
    for B in a.batches:
        r = ours("ours: fused CE, no biases", B, bias=False)
        if r is None:
            break
        sweep[B] = r
    bestB = max(sweep, key=lambda b: sweep[b]["tok_s"]) if sweep else 16
    ours("ours: fused CE (GPT-2 biases)", bestB)
    if a.chunk:
        ours(f"ours: no biases, loss chunk {a.chunk}", bestB, bias=False, chunk=a.chunk)
    if a.cdt:
        import torch._inductor.config as icfg

        icfg.coordinate_descent_tuning = True
        ours("ours: no biases + coordinate-descent tuning", bestB, bias=False, need=100.0)
        icfg.coordinate_descent_tuning = False
    if cands and hf_run:
        res["ratio_vs_hf_b16"] = max(r["tok_s"] for r in cands) / hf_run["tok_s"]
    ok = [r for r in res["runs"] if "tok_s" in r and r["name"].startswith("ours")]
    if ok:
        top = max(ok, key=lambda r: r["mfu"])
        res["best"] = {k: top[k] for k in ("name", "batch", "tok_s", "mfu", "mem_gib")}
        say(f"best: {top['name']} B={top['batch']} {top['tok_s'] / 1e3:.1f}k tok/s MFU "
            f"{100 * top['mfu']:.1f}% mem {top['mem_gib']:.1f} GiB; vs transformers at B=16: "
            f"{res.get('ratio_vs_hf_b16', float('nan')):.2f}x")
        if left() > 45:
            try:
                res["profile"] = profile(torch, F, top, batches, out, T, V)
            except Exception:
                say("profile failed:\n" + traceback.format_exc())
    (out / "single.json").write_text(json.dumps(res, indent=2))


def categorize(name: str) -> str:
    n = name.lower()
    if any(k in n for k in ("flash", "fmha", "attn", "attention", "cudnn")):
        return "attention"
    if any(k in n for k in ("gemm", "sm90_xmma", "cutlass", "cublas", "nvjet", "matmul", "wgmma")):
        return "matmul"
    if "adam" in n or "multi_tensor" in n or "foreach" in n:
        return "optimizer"
    if "nccl" in n:
        return "communication"
    if "triton" in n:
        return "fused pointwise/reduction (triton)"
    if "memcpy" in n or "memset" in n or "copy" in n:
        return "copies"
    return "other"


def profile(torch, F, run: dict, batches, out: Path, T: int, V: int) -> dict:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    from trainer.device import sdpa_context
    from trainer.model import GPT, preset

    torch._dynamo.reset()
    B = run["batch"]
    model = GPT(preset("124M", block_size=T, vocab_size=V, loss_impl=run["loss_impl"],
                       bias=run["bias"], loss_chunk=run.get("chunk", 8192))).cuda()
    model.compile_blocks()
    step = make_step(torch, F, "ours")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=True)
    data = batches(B, 2)
    with sdpa_context(run["sdpa"]):
        for i in range(3):
            step(model, opt, data[i % 2])
        torch.cuda.synchronize()
        with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
            for i in range(3):
                step(model, opt, data[i % 2])
            torch.cuda.synchronize()
    cats: dict[str, float] = {}
    kernels = []
    for ev in p.key_averages():
        dev = getattr(ev, "device_type", None)
        t = getattr(ev, "self_device_time_total", None)
        if t is None:
            t = getattr(ev, "self_cuda_time_total", 0)
        if not t or (dev is not None and "CUDA" not in str(dev)):
            continue
        cats[categorize(ev.key)] = cats.get(categorize(ev.key), 0.0) + t
        kernels.append((t, ev.key[:90]))
    total = sum(cats.values()) or 1.0
    kernels.sort(reverse=True)
    try:
        table = p.key_averages().table(sort_by="self_device_time_total", row_limit=40)
    except Exception:
        table = p.key_averages().table(sort_by="self_cuda_time_total", row_limit=40)
    (out / "profile.txt").write_text(table)
    res = {"batch": B, "gpu_time_ms_per_step": total / 3 / 1e3,
           "share": {k: v / total for k, v in sorted(cats.items(), key=lambda kv: -kv[1])},
           "top_kernels": [(round(t / 3 / 1e3, 3), k) for t, k in kernels[:12]]}
    say("profile (share of GPU time):", json.dumps(res["share"]))
    for t, k in res["top_kernels"]:
        say(f"  {t:8.3f} ms/step  {k}")
    return res


# -------------------------------------------------------------------------------------------- presets
# name: (preset, block, batch, checkpointing)
PLANS = {  # in order of importance: a short budget skips the last ones
    "350M-b16": ("350M", 1024, 16, "none"),
    "1.3B-b16": ("1.3B", 1024, 16, "none"),
    "1.3B-b16-sel": ("1.3B", 1024, 16, "selective"),
    "1.3B-T2048-b8-sel": ("1.3B", 2048, 8, "selective"),
    "2.7B-b8-sel": ("2.7B", 1024, 8, "selective"),
    "1.3B-T2048-b8": ("1.3B", 2048, 8, "none"),
    "350M-b32": ("350M", 1024, 32, "none"),
    "1.3B-b32-full": ("1.3B", 1024, 32, "full"),
    "1.3B-b32-sel": ("1.3B", 1024, 32, "selective"),
    "2.7B-b8": ("2.7B", 1024, 8, "none"),
    "2.7B-T2048-b8-sel": ("2.7B", 2048, 8, "selective"),
}


def presets(a) -> None:
    import torch
    import torch.nn.functional as F

    from trainer.model import GPT, preset

    torch.backends.cuda.matmul.allow_tf32 = True
    out = Path(a.out)
    res: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "runs": []}
    res["peak_tflops"] = matmul_peak(torch)
    say(f"{res['device']}: bf16 matmul peak {res['peak_tflops']:.0f} TFLOP/s")
    V = 50257
    g = torch.Generator(device="cuda").manual_seed(0)
    for name in a.plans:
        left = a.budget - (time.time() - T0)
        if left < a.need:
            say(f"skip {name}: {left:.0f}s left")
            res["runs"].append({"name": name, "skipped": True})
            continue
        size, T, B, ac = PLANS[name]
        torch._dynamo.reset()
        torch.manual_seed(0)
        model = fn = None
        try:
            model = GPT(preset(size, block_size=T, vocab_size=V, bias=False, grad_checkpoint=ac)).cuda()
            model.compile_blocks()
            fpt = model.flops_per_token(T)
            batches = []
            for _ in range(2):
                w = torch.randint(0, V, (B, T + 1), device="cuda", generator=g)
                batches.append((w[:, :-1].contiguous(), w[:, 1:].contiguous()))
            r = time_training(torch, model, make_step(torch, F, "ours"), batches, a.warmup, a.steps)
            r.update(name=name, preset=size, block=T, batch=B, checkpointing=ac, params=model.num_params(),
                     tok_s=B * T / r["step_s"])
            r["mfu"] = r["tok_s"] * fpt / (res["peak_tflops"] * 1e12)
            say(f"{name:<20} {r['tok_s'] / 1e3:7.1f}k tok/s  MFU {100 * r['mfu']:5.1f}%  mem {r['mem_gib']:6.1f} GiB"
                f"  warmup {r['warmup_s']:5.1f}s  loss {r['first_loss']:.3f}->{r['last_loss']:.3f}")
        except torch.OutOfMemoryError:
            r = {"name": name, "oom": True}
            say(f"{name}: out of memory")
        except Exception:
            r = {"name": name, "error": traceback.format_exc()[-800:]}
            say(f"{name} failed:\n" + traceback.format_exc()[-1500:])
        finally:
            del model, fn
            torch.cuda.empty_cache()
        res["runs"].append(r)
        (out / "presets.json").write_text(json.dumps(res, indent=2))
    by = {r["name"]: r for r in res["runs"] if "tok_s" in r}
    for base, sel in (("1.3B-b16", "1.3B-b16-sel"), ("1.3B-T2048-b8", "1.3B-T2048-b8-sel")):
        if base in by and sel in by:
            res[f"selective_vs_none_{base}"] = by[sel]["tok_s"] / by[base]["tok_s"]
            say(f"selective / none at {base}: {res[f'selective_vs_none_{base}']:.3f}")
    (out / "presets.json").write_text(json.dumps(res, indent=2))


# -------------------------------------------------------------------------------------------- scaling
def scaling(a) -> None:
    import torch

    out = Path(a.out)
    data = Path(a.data)
    res: dict = {"torch": torch.__version__, "cuda": torch.version.cuda,
                 "nccl": ".".join(map(str, torch.cuda.nccl.version())) if torch.cuda.is_available() else None,
                 "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                 "gpus": torch.cuda.device_count(), "runs": {}}
    base = ["--data", str(data / "job"), "--model", a.model, "--block-size", str(a.block),
            "--device", a.device,
            "--batch-size", str(a.batch), "--max-steps", str(a.steps), "--warmup-steps", "10",
            "--lr", "6e-4", "--log-interval", "1", "--eval-interval", "0", "--ckpt-interval", "0",
            "--no-compile" if a.no_compile else "--compile", "--compile-scope", a.scope,
            "--loss-impl", a.loss_impl, "--sdpa-backend", a.sdpa,
            "--no-tensorboard", "--peak-tflops", str(a.peak), "--tokenize-backend", "pool", *a.extra.split()]
    plans = [("1gpu", 1, 2, []), ("2gpu", 2, 1, []), ("2gpu_synthetic", 2, 1, ["--synthetic"]),
             ("2gpu_accum2_nosync", 2, 2, [])]
    plans = [p for p in plans if p[0] in a.plans.split(",")]
    for name, nproc, accum, extra in plans:
        left = a.budget - (time.time() - T0)
        if left < 100:
            say(f"skip {name}: {left:.0f}s left")
            continue
        run_dir = Path("/tmp/bench_runs") / name
        (run_dir / "data").mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-r", *[str(p) for p in (data / "prep").iterdir()], str(run_dir / "data")],
                       check=True)
        cmd = ["torchrun", "--standalone", f"--nproc_per_node={nproc}", "-m", "trainer",
               *base, "--grad-accum", str(accum), "--run-dir", str(run_dir), *extra]
        say("run", " ".join(cmd))
        t = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(30, left - 20),
                           env={**os.environ, "PYTHONPATH": str(REPO)})
        if p.returncode:
            say(f"{name} failed ({p.returncode}):\n{p.stderr[-3000:]}")
            res["runs"][name] = {"failed": p.returncode}
            continue
        recs = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln]
        steps = [r for r in recs if "loss" in r]
        timed = steps[a.skip:]
        st = statistics.median(r["step_time"] for r in timed)
        tps = statistics.median(r["tok_per_s"] for r in timed)
        res["runs"][name] = {"nproc": nproc, "accum": accum, "wall_s": time.time() - t,
                             "step_time_s": st, "tok_s": tps, "mfu_per_gpu": None,
                             "losses": [r["loss"] for r in steps], "tokens": [r["tokens"] for r in steps]}
        if timed and "mfu" in timed[0]:
            res["runs"][name]["mfu_per_gpu"] = statistics.median(r["mfu"] for r in timed) / nproc
        say(f"{name}: {tps / 1e3:.1f}k tok/s, step {st * 1e3:.1f} ms, wall {time.time() - t:.0f}s")
        (out / "scaling.json").write_text(json.dumps(res, indent=2))
    r = res["runs"]
    if "1gpu" in r and "2gpu" in r and "tok_s" in r["1gpu"] and "tok_s" in r["2gpu"]:
        res["scaling"] = r["2gpu"]["tok_s"] / r["1gpu"]["tok_s"]
        l1, l2 = r["1gpu"]["losses"], r["2gpu"]["losses"]
        diffs = [abs(x - y) for x, y in zip(l1, l2, strict=False)]
        res["loss_max_abs_diff"] = max(diffs)
        res["loss_last10_1gpu"] = l1[-10:]
        res["loss_last10_2gpu"] = l2[-10:]
        say(f"scaling {res['scaling']:.3f}x; max |loss diff| at equal tokens {max(diffs):.4f}")
        plot_curves(r, out / "loss_1v2.png")
    (out / "scaling.json").write_text(json.dumps(res, indent=2))


def plot_curves(runs: dict, png: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in ("1gpu", "2gpu"):
        ax.plot([t / 1e6 for t in runs[name]["tokens"]], runs[name]["losses"], label=name)
    ax.set_xlabel("tokens (M)")
    ax.set_ylabel("train loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make-data")
    m.add_argument("dir")
    m.add_argument("--vocab", type=int, default=50257)
    m.add_argument("--max-mb", type=float, default=40.0)
    s = sub.add_parser("single")
    s.add_argument("--out", required=True)
    s.add_argument("--budget", type=float, default=400)
    s.add_argument("--warmup", type=int, default=4)
    s.add_argument("--steps", type=int, default=15)
    s.add_argument("--plain", action="store_true", help="also time the float32-logits loss")
    s.add_argument("--batches", type=int, nargs="+", default=[64, 96, 128])
    s.add_argument("--chunk", type=int, default=0, help="also time this fused-loss chunk size")
    s.add_argument("--cdt", action="store_true", help="also try inductor coordinate-descent tuning")
    pr = sub.add_parser("presets")
    pr.add_argument("--out", required=True)
    pr.add_argument("--budget", type=float, default=540)
    pr.add_argument("--warmup", type=int, default=3)
    pr.add_argument("--steps", type=int, default=10)
    pr.add_argument("--need", type=float, default=35.0, help="seconds a plan needs at least")
    pr.add_argument("--plans", nargs="+", default=list(PLANS), choices=list(PLANS))
    c = sub.add_parser("scaling")
    c.add_argument("--data", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--budget", type=float, default=560)
    c.add_argument("--batch", type=int, default=32)
    c.add_argument("--steps", type=int, default=60)
    c.add_argument("--skip", type=int, default=10)
    c.add_argument("--scope", default="blocks")
    c.add_argument("--loss-impl", default="fused")
    c.add_argument("--sdpa", default="auto")
    c.add_argument("--peak", type=float, default=780.0)
    c.add_argument("--model", default="124M")
    c.add_argument("--block", type=int, default=1024)
    c.add_argument("--device", default="auto")
    c.add_argument("--no-compile", action="store_true")
    c.add_argument("--extra", default="", help="more trainer flags, e.g. --no-bias")
    c.add_argument("--plans", default="1gpu,2gpu,2gpu_synthetic,2gpu_accum2_nosync")
    a = ap.parse_args()
    Path(getattr(a, "out", ".")).mkdir(parents=True, exist_ok=True)
    {"make-data": lambda: make_data(Path(a.dir), a.vocab, a.max_mb), "single": lambda: single(a),
     "scaling": lambda: scaling(a), "presets": lambda: presets(a)}[a.cmd]()


if __name__ == "__main__":
    main()
