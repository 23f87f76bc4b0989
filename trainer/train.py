"""The training loop: one process, or one process per GPU under torchrun / Ray Train (DDP).

``python -m trainer train --data <job out> --run-dir <run>`` tokenizes the job's train/eval Parquet
(once, into ``<run>/data``), trains, evaluates every ``eval_interval`` steps, checkpoints to
``<run>/ckpt.pt`` and writes ``<run>/metrics.jsonl``, TensorBoard events (when tensorboard is installed)
and ``<run>/loss.png`` (when matplotlib is). ``--resume`` continues exactly where the checkpoint left
off: model, optimizer, schedule, RNG states and data position. ``--init-from ckpt.pt`` fine-tunes
another run's model (``--freeze-layers K`` keeps its embeddings and first K blocks fixed).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from trainer.checkpoint import build_model, load_checkpoint, save_checkpoint
from trainer.data import Windows, eval_windows, open_tokens, prepare
from trainer.evaluate import autocast_for, mean_loss
from trainer.model import GPT, GPTConfig, preset

log = logging.getLogger("trainer")


@dataclass
class TrainConfig:
    data: str = ""  # a curation job's output folder (train/, eval/ or data/, manifest.json)
    run_dir: str = "runs/default"
    tokenizer: str | None = None  # a tokenizer.json to use instead of training one
    vocab_size: int = 8192
    eval_fraction: float = 0.01
    tokenize_workers: int = 0
    tokenize_backend: str = "auto"
    model: str = "tiny"
    pos: str = "learned"
    block_size: int = 256
    dropout: float = 0.0
    bias: bool = True  # biases in linear layers and layer norms (GPT-2 has them)
    loss_impl: str = "fused"
    batch_size: int = 8  # per process, per micro-batch
    grad_accum: int = 1
    max_steps: int = 100
    stop_after: int = 0  # stop (with a checkpoint) after this step, keeping the max_steps schedule
    lr: float = 6e-4
    min_lr: float = 6e-5
    warmup_steps: int = 10
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_interval: int = 50
    eval_iters: int = 10
    log_interval: int = 10
    ckpt_interval: int = 100
    seed: int = 1337
    device: str = "auto"
    dtype: str = "auto"  # auto: bf16 autocast on CUDA, float32 on CPU
    compile: bool = False
    compile_mode: str = "default"
    compile_scope: str = "model"  # "model": the whole (DDP-wrapped) model; "blocks": each block + loss
    grad_checkpoint: bool = False
    sdpa_backend: str = "auto"  # auto, flash, cudnn, efficient, math
    resume: bool = False
    init_from: str | None = None
    freeze_layers: int = 0
    bucket_mb: int = 25
    synthetic: bool = False  # one fixed random batch on the device: measures the loop without a loader
    peak_tflops: float = 0.0  # for MFU in the metrics
    plot: bool = True
    tensorboard: bool = True


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to 1, then cosine decay to min_lr/lr at max_steps."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.min_lr / cfg.lr
    return floor + 0.5 * (1.0 - floor) * (1.0 + math.cos(math.pi * progress))


class Dist:
    """Rank, world size and device of this process; owns the process group it started."""

    def __init__(self, device: str = "auto") -> None:
        self.started = False
        if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            backend = "nccl" if torch.cuda.is_available() and device in ("auto", "cuda") else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group(backend)
            self.started = True
        self.on = dist.is_initialized()
        self.rank = dist.get_rank() if self.on else 0
        self.world = dist.get_world_size() if self.on else 1
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda":
            device = f"cuda:{torch.cuda.current_device() if self.on else 0}"
        self.device = torch.device(device)
        self.master = self.rank == 0

    def barrier(self) -> None:
        if self.on:
            dist.barrier()

    def close(self) -> None:
        if self.started:
            dist.destroy_process_group()


def _rng_state(device: torch.device) -> dict:
    s = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        s["cuda"] = torch.cuda.get_rng_state(device)
    return s


def _set_rng_state(s: dict, device: torch.device) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])
    if device.type == "cuda" and "cuda" in s:
        torch.cuda.set_rng_state(s["cuda"], device)


def _optimizer(model: GPT, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), **extra)


class Metrics:
    """metrics.jsonl (rank 0), TensorBoard when importable, the loss-curve PNG at the end."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool, keep_until: int | None) -> None:
        self.enabled, self.path, self.tb = enabled, run_dir / "metrics.jsonl", None
        if not enabled:
            return
        if keep_until is not None and self.path.exists():  # resume: drop what came after the checkpoint
            lines = [ln for ln in self.path.read_text().splitlines()
                     if ln.strip() and json.loads(ln).get("step", 0) <= keep_until]
            self.path.write_text("".join(ln + "\n" for ln in lines))
        elif keep_until is None:
            self.path.write_text("")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tb"))
            except ImportError:
                log.info("tensorboard not installed: metrics go to metrics.jsonl only")

    def write(self, rec: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.tb is not None:
            for k, v in rec.items():
                if k != "step" and isinstance(v, int | float):
                    self.tb.add_scalar(k, v, rec["step"])

    def close(self, plot_to: Path | None) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.enabled and plot_to is not None:
            plot_losses(self.path, plot_to)


def plot_losses(metrics_path: Path, png: Path) -> bool:
    """Train (and eval) loss against step from a metrics JSONL; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    recs = [json.loads(ln) for ln in metrics_path.read_text().splitlines() if ln.strip()]
    tr = [(r["step"], r["loss"]) for r in recs if "loss" in r]
    ev = [(r["step"], r["eval_loss"]) for r in recs if "eval_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    if tr:
        ax.plot(*zip(*tr, strict=True), label="train")
    if ev:
        ax.plot(*zip(*ev, strict=True), "o-", label="eval")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return True


def sdpa_context(name: str):
    """A context choosing the SDPA kernel, or nothing for 'auto'."""
    if name == "auto":
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
    return sdpa_kernel(backends[name])


def run(cfg: TrainConfig, on_log=None, dist_ctx: Dist | None = None) -> dict:
    """Train as configured; returns a summary. on_log(record) sees every metrics record (all ranks)."""
    d = dist_ctx or Dist(cfg.device)
    try:
        return _run(cfg, d, on_log)
    finally:
        if dist_ctx is None:
            d.close()


def _run(cfg: TrainConfig, d: Dist, on_log) -> dict:
    run_dir = Path(cfg.run_dir)
    device = d.device
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    ckpt_path = run_dir / "ckpt.pt"
    resume = cfg.resume and ckpt_path.exists()
    ckpt = load_checkpoint(ckpt_path) if resume else None
    init = load_checkpoint(cfg.init_from) if cfg.init_from and not resume else None

    # data: rank 0 tokenizes once, the others wait and read
    tokenizer = cfg.tokenizer
    data_dir = run_dir / "data"
    if init is not None and tokenizer is None:  # fine-tuning keeps the base model's tokenizer
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "base_tokenizer.json").write_text(init["tokenizer_json"])
        tokenizer = str(data_dir / "base_tokenizer.json")
    if d.master:
        meta = prepare(cfg.data, data_dir, tokenizer=tokenizer, vocab_size=cfg.vocab_size,
                       eval_fraction=cfg.eval_fraction, workers=cfg.tokenize_workers,
                       backend=cfg.tokenize_backend)
    d.barrier()
    if not d.master:
        meta = json.loads((data_dir / "meta.json").read_text())
    train_tokens = open_tokens(data_dir / "train.bin", meta["dtype"])
    eval_tokens = open_tokens(data_dir / "eval.bin", meta["dtype"])
    tok_json = (data_dir / "tokenizer.json").read_text()

    # model
    if init is not None:
        model = build_model(init, dropout=cfg.dropout, grad_checkpoint=cfg.grad_checkpoint,
                            loss_impl=cfg.loss_impl)
        if model.cfg.vocab_size < meta["vocab_size"]:
            raise ValueError("the base model's vocabulary is smaller than the tokenizer's")
    else:
        if ckpt is not None:
            mcfg_kw = dict(ckpt["model_config"])
        else:
            mcfg_kw = asdict(preset(cfg.model, vocab_size=meta["vocab_size"], block_size=cfg.block_size,
                                    pos=cfg.pos, dropout=cfg.dropout, loss_impl=cfg.loss_impl, bias=cfg.bias,
                                    grad_checkpoint=cfg.grad_checkpoint))
        torch.manual_seed(cfg.seed)
        model = GPT(GPTConfig(**mcfg_kw))
    block_size = model.cfg.block_size
    if block_size != cfg.block_size:
        log.info("block size %d comes from the checkpoint", block_size)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
    frozen = model.freeze_bottom(cfg.freeze_layers) if cfg.freeze_layers else []
    model.to(device)
    raw = model
    optimizer = _optimizer(raw, cfg, device)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    start_step = 0
    if ckpt is not None:
        if ckpt["global_batch"] != cfg.batch_size * cfg.grad_accum * d.world:
            raise ValueError("resume needs the same global batch (batch_size * grad_accum * processes)")
        optimizer.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        start_step = ckpt["step"]
        rng = ckpt["rng"]
        _set_rng_state(rng[d.rank] if d.rank < len(rng) else rng[0], device)
    else:
        torch.manual_seed(cfg.seed + d.rank)
        np.random.seed(cfg.seed + d.rank)
        random.seed(cfg.seed + d.rank)

    ddp = None
    if d.on:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                    bucket_cap_mb=cfg.bucket_mb, gradient_as_bucket_view=True)
    if cfg.compile:
        mode = None if cfg.compile_mode == "default" else cfg.compile_mode
        if cfg.compile_scope == "blocks":
            raw.compile_blocks(mode)
        elif cfg.compile_scope == "model":
            raw.compile_loss()
            model = torch.compile(model, mode=mode)
        else:
            raise ValueError(f"compile_scope must be 'model' or 'blocks', not {cfg.compile_scope!r}")

    windows = Windows(train_tokens, block_size, cfg.seed)
    accum, B = cfg.grad_accum, cfg.batch_size
    global_batch = B * accum * d.world
    tokens_per_step = global_batch * block_size
    flops_tok = raw.flops_per_token(block_size)
    metrics = Metrics(run_dir, d.master, cfg.tensorboard, start_step if ckpt is not None else None)
    mhash, thash = meta["manifest_hash"], meta["tokenizer_hash"]
    cuda = device.type == "cuda"

    def fetch(step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = windows.batch(step, B, micro, accum, d.rank, d.world)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        if cuda:
            xt, yt = xt.pin_memory(), yt.pin_memory()
        return xt.to(device, non_blocking=True), yt.to(device, non_blocking=True)

    synthetic = None
    if cfg.synthetic:
        g = torch.Generator().manual_seed(cfg.seed)
        s = torch.randint(0, meta["vocab_size"], (B, block_size + 1), generator=g).to(device)
        synthetic = (s[:, :-1], s[:, 1:])

    def evaluate(step: int) -> None:
        loss, n = mean_loss(raw, eval_windows(eval_tokens, block_size, B, cfg.eval_iters, d.rank, d.world),
                            device, cfg.dtype)
        rec = {"step": step, "eval_loss": loss, "eval_ppl": math.exp(min(loss, 50.0)), "eval_tokens": n}
        metrics.write(rec)
        if on_log:
            on_log(rec)
        if d.master:
            log.info("step %d eval loss %.4f ppl %.2f", step, loss, rec["eval_ppl"])

    def checkpoint(step: int) -> None:
        rngs = [None] * d.world
        if d.on:
            dist.all_gather_object(rngs, _rng_state(device))
        else:
            rngs = [_rng_state(device)]
        if d.master:
            save_checkpoint(ckpt_path, {
                "model": raw.state_dict(), "model_config": raw.cfg.to_dict(), "train_config": asdict(cfg),
                "optimizer": optimizer.state_dict(), "scheduler": sched.state_dict(), "step": step,
                "data_position": step, "global_batch": global_batch, "rng": rngs,
                "manifest_hash": mhash, "tokenizer_hash": thash, "tokenizer_json": tok_json,
                "frozen": frozen,
            })
        d.barrier()

    stop = min(cfg.max_steps, cfg.stop_after) if cfg.stop_after else cfg.max_steps
    model.train()
    losses: list[float] = []
    step = start_step
    nxt = synthetic or (fetch(step, 0) if step < stop else None)
    t_last, steps_since = time.perf_counter(), 0
    loss_acc = torch.zeros((), device=device)
    with sdpa_context(cfg.sdpa_backend):
        while step < stop:
            if cfg.eval_interval and step % cfg.eval_interval == 0 and step > start_step:
                evaluate(step)
                t_last, steps_since = time.perf_counter(), 0
            for micro in range(accum):
                x, y = nxt
                sync = micro == accum - 1
                ctx = ddp.no_sync() if ddp is not None and not sync else nullcontext()
                with ctx:
                    with autocast_for(device, cfg.dtype):
                        loss = model(x, y) / accum
                    loss.backward()
                loss_acc += loss.detach()
                if synthetic is None:  # prefetch the next micro-batch while the GPU works
                    ns, nm = (step, micro + 1) if micro + 1 < accum else (step + 1, 0)
                    nxt = fetch(ns, nm) if ns < stop else None
            norm = torch.nn.utils.clip_grad_norm_(raw.parameters(), cfg.grad_clip) if cfg.grad_clip else None
            optimizer.step()
            sched.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            steps_since += 1
            if step % cfg.log_interval == 0 or step == stop:
                if d.on:
                    dist.all_reduce(loss_acc)  # SUM: gloo has no AVG
                lossv = loss_acc.item() / steps_since / d.world
                dt = time.perf_counter() - t_last
                tps = tokens_per_step * steps_since / dt
                rec = {"step": step, "loss": lossv, "lr": sched.get_last_lr()[0],
                       "tokens": step * tokens_per_step, "step_time": dt / steps_since, "tok_per_s": tps,
                       "grad_norm": float(norm) if norm is not None else None}
                if cfg.peak_tflops:
                    rec["mfu"] = flops_tok * tps / (cfg.peak_tflops * 1e12)
                losses.append(lossv)
                metrics.write(rec)
                if on_log:
                    on_log(rec)
                if d.master:
                    log.info("step %d loss %.4f lr %.2e %.0f tok/s", step, lossv, rec["lr"], tps)
                loss_acc.zero_()
                t_last, steps_since = time.perf_counter(), 0
            if cfg.ckpt_interval and step % cfg.ckpt_interval == 0 and step < stop:
                checkpoint(step)
                t_last = time.perf_counter()
    summary = {"steps": step, "losses": losses, "tokens": step * tokens_per_step}
    if cfg.eval_interval and step > start_step:
        evaluate(step)
    checkpoint(step)
    metrics.close(run_dir / "loss.png" if cfg.plot else None)
    summary["checkpoint"] = str(ckpt_path)
    summary["manifest_hash"] = mhash
    summary["tokenizer_hash"] = thash
    return summary


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m trainer train", description=__doc__.split("\n")[0])
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            typ = {"int": int, "float": float}.get(str(f.type), str)
            ap.add_argument(flag, type=typ, default=f.default)
    ap.add_argument("--config", help="a YAML or JSON file of these options (flags given here win)")
    return ap


def config_from_args(argv: list[str] | None) -> TrainConfig:
    ap = build_parser()
    a = ap.parse_args(argv)
    values = {f.name: getattr(a, f.name) for f in fields(TrainConfig)}
    if a.config:
        text = Path(a.config).read_text()
        if a.config.endswith((".yaml", ".yml")):
            import yaml

            loaded = yaml.safe_load(text) or {}
        else:
            loaded = json.loads(text)
        unknown = set(loaded) - {f.name for f in fields(TrainConfig)}
        if unknown:
            ap.error(f"unknown option(s) in {a.config}: {sorted(unknown)}")
        defaults = ap.parse_args([])
        for k, v in loaded.items():
            if getattr(a, k) == getattr(defaults, k):  # not given on the command line
                values[k] = v
    if not values["data"]:
        ap.error("--data (a curation job's output folder) is required")
    return TrainConfig(**values)


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        summary = run(cfg)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "losses"}))
    return 0


__all__ = ["TrainConfig", "run", "main", "lr_factor"]
