"""The training loop: one process, or one process per GPU under torchrun / Ray Train (DDP or FSDP).

``curator train --data <job out> --run-dir <run>`` (or ``python -m trainer train ...``) tokenizes the
job's train/eval Parquet (once, into ``<run>/data``), trains, evaluates every ``eval_interval`` steps,
checkpoints to ``<run>/ckpt.pt`` and writes ``<run>/metrics.jsonl``, ``<run>/progress.json`` (for a job
service to poll; see ``trainer.metrics``), TensorBoard events (when tensorboard is installed) and
``<run>/loss.png`` (when matplotlib is). ``--resume`` continues exactly where the checkpoint left off:
model, optimizer, schedule, RNG states and data position. ``--init-from ckpt.pt`` fine-tunes another
run's model (``--freeze-layers K`` keeps its embeddings and first K blocks fixed). ``--arch encdec``
trains the encoder-decoder on span corruption of the same tokens, in the same loop.
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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from trainer.checkpoint import load_checkpoint, make_model, save_checkpoint
from trainer.data import LMTask, open_tokens, prepare
from trainer.device import autocast_for, sdpa_context, use_tf32
from trainer.dist import PARALLEL, Dist, Parallel, grad_norm_value
from trainer.evaluate import mean_loss
from trainer.metrics import Metrics, Progress
from trainer.model import CHECKPOINT_MODES, PRESETS, checkpoint_mode, preset
from trainer.span import SpanTask, span_shape

log = logging.getLogger("trainer")

ARCHS = ("gpt", "encdec")


def opt(default, help: str, choices: tuple | None = None):
    """A TrainConfig field with its command-line help (and allowed values)."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class TrainConfig:
    data: str = opt("", "a curation job's output folder (train/ and eval/, or data/; manifest.json), or "
                    "a token folder written by 'python -m trainer prepare'")
    run_dir: str = opt("runs/default", "folder for checkpoints, metrics, progress.json and token files")
    tokenizer: str | None = opt(None, "a tokenizer.json to use instead of training one on the train split")
    vocab_size: int = opt(8192, "vocabulary size of the byte-level BPE trained on the train split")
    eval_fraction: float = opt(0.01, "share of documents held out for eval when the job has only data/")
    tokenize_workers: int = opt(0, "processes (or Ray tasks) for tokenizing; 0: one per CPU")
    tokenize_backend: str = opt("auto", "tokenize with Ray Data (when connected) or a process pool",
                                ("auto", "ray", "pool"))
    arch: str = opt("gpt", "gpt: decoder-only language model; encdec: encoder-decoder on span corruption",
                    ARCHS)
    model: str = opt("tiny", "size preset (layers, heads, width)", tuple(PRESETS))
    pos: str = opt("learned", "positions: learned or rope (gpt); learned or sinusoidal (encdec)",
                   ("learned", "rope", "sinusoidal"))
    block_size: int = opt(256, "context length in tokens (encdec: source window before corruption)")
    dropout: float = opt(0.0, "dropout probability (attention, residual, embeddings)")
    bias: bool = opt(True, "biases in linear layers and layer norms (GPT-2 has them)")
    loss_impl: str = opt("fused", "fused: chunked linear + cross-entropy, logits never stored; plain",
                         ("fused", "plain"))
    shared_embeddings: bool = opt(True, "encdec: one token table for source, target and output head")
    noise_density: float = opt(0.15, "encdec: share of each window's tokens masked")
    mean_span: float = opt(3.0, "encdec: mean length of a masked span")
    batch_size: int = opt(8, "sequences per process per micro-batch")
    grad_accum: int = opt(1, "micro-batches per optimizer step")
    max_steps: int = opt(100, "optimizer steps of the schedule")
    stop_after: int = opt(0, "stop (with a checkpoint) after this step, keeping the max_steps schedule")
    lr: float = opt(6e-4, "peak learning rate")
    min_lr: float = opt(6e-5, "learning rate at the end of the cosine decay")
    warmup_steps: int = opt(10, "steps of linear warm-up")
    weight_decay: float = opt(0.1, "AdamW weight decay (matrices only)")
    beta1: float = opt(0.9, "AdamW beta1")
    beta2: float = opt(0.95, "AdamW beta2")
    grad_clip: float = opt(1.0, "clip the gradient norm to this (0: off)")
    eval_interval: int = opt(50, "evaluate every this many steps and at the end (0: never)")
    eval_iters: int = opt(10, "eval batches per process (0: the whole eval split)")
    log_interval: int = opt(10, "log (metrics.jsonl, progress.json) every this many steps")
    ckpt_interval: int = opt(100, "checkpoint every this many steps (and always at the end; 0: end only)")
    seed: int = opt(1337, "seed of initialisation, data order and dropout")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N")
    dtype: str = opt("auto", "auto: bf16 autocast on CUDA, float32 on CPU", ("auto", "bfloat16", "float32"))
    compile: bool = opt(False, "torch.compile the model")
    compile_mode: str = opt("default", "torch.compile mode (default, reduce-overhead, max-autotune)")
    compile_scope: str = opt("model", "model: the whole (wrapped) model; blocks: each block and the loss",
                             ("model", "blocks"))
    grad_checkpoint: str = opt("none", "activation checkpointing per block: none, full, or selective "
                               "(keep matmul outputs, recompute attention and pointwise ops)", CHECKPOINT_MODES)
    sdpa_backend: str = opt("auto", "attention kernel", ("auto", "flash", "cudnn", "efficient", "math"))
    parallel: str = opt("ddp", "with several processes: ddp (replicas) or fsdp (sharded, FSDP2)", PARALLEL)
    resume: bool = opt(False, "continue from <run_dir>/ckpt.pt when it exists")
    init_from: str | None = opt(None, "fine-tune from this checkpoint (its model and tokenizer)")
    freeze_layers: int = opt(0, "with init_from: keep the embeddings and the first K blocks fixed")
    bucket_mb: int = opt(25, "DDP gradient bucket size in MiB")
    synthetic: bool = opt(False, "train on one fixed batch kept on the device (measures the loop alone)")
    peak_tflops: float = opt(0.0, "accelerator peak in TFLOP/s, for MFU in the metrics (0: no MFU)")
    plot: bool = opt(True, "write loss.png at the end (needs matplotlib)")
    tensorboard: bool = opt(True, "write TensorBoard events (when tensorboard is installed)")

    def __post_init__(self) -> None:
        self.grad_checkpoint = checkpoint_mode(self.grad_checkpoint)
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ValueError(f"{f.name} must be one of {list(choices)}, not {getattr(self, f.name)!r}")


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to 1, then cosine decay to min_lr/lr at max_steps."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.min_lr / cfg.lr
    return floor + 0.5 * (1.0 - floor) * (1.0 + math.cos(math.pi * progress))


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


def _optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device,
               sharded: bool) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    extra = {}
    if device.type == "cuda":
        extra = {"foreach": True} if sharded else {"fused": True}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), **extra)


def model_config(cfg: TrainConfig, meta: dict, task: dict) -> dict:
    """The model config dict of a new run (GPTConfig or EncDecConfig fields)."""
    n_layer, n_head, n_embd = PRESETS[cfg.model]
    common = dict(dropout=cfg.dropout, loss_impl=cfg.loss_impl, bias=cfg.bias,
                  grad_checkpoint=cfg.grad_checkpoint, n_head=n_head, n_embd=n_embd)
    if cfg.arch == "gpt":
        if cfg.pos == "sinusoidal":
            raise ValueError("sinusoidal positions are for --arch encdec; the GPT takes learned or rope")
        return asdict(preset(cfg.model, vocab_size=meta["vocab_size"], block_size=cfg.block_size, pos=cfg.pos,
                             **{k: v for k, v in common.items() if k not in ("n_head", "n_embd")}))
    if cfg.pos == "rope":
        raise ValueError("the encoder-decoder takes learned or sinusoidal positions, not rope")
    shape = span_shape(task["window"], task["noise_density"], task["mean_span"])
    return dict(vocab_size=meta["vocab_size"], n_sentinels=shape.spans, src_len=shape.src_len,
                tgt_len=shape.tgt_len, n_enc_layer=n_layer, n_dec_layer=n_layer, pos=cfg.pos,
                shared_embeddings=cfg.shared_embeddings, **common)


def make_task(arch: str, task: dict, train: np.ndarray, eval_tokens: np.ndarray, seed: int):
    if arch == "gpt":
        return LMTask(train, eval_tokens, task["window"], seed)
    return SpanTask(train, eval_tokens, task["window"], seed, task["sentinel0"], task["eot"], task["start"],
                    task["noise_density"], task["mean_span"])


@dataclass
class Session:
    """Everything the loop needs, built once by ``setup``."""

    cfg: TrainConfig
    d: Dist
    run_dir: Path
    ckpt_path: Path
    meta: dict
    tok_json: str
    arch: str
    task_spec: dict
    task: LMTask | SpanTask
    raw: torch.nn.Module
    par: Parallel
    model: torch.nn.Module  # what the loop calls: wrapped and/or compiled
    optimizer: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    start_step: int
    stop_step: int
    frozen: list[str]
    metrics: Metrics
    progress: Progress
    global_batch: int
    tokens_per_step: int
    flops_tok: float


def is_prepared(folder: str | Path) -> bool:
    """Whether folder holds token files written by ``prepare`` (meta.json, train.bin, eval.bin, tokenizer)."""
    f = Path(folder)
    return all((f / n).is_file() for n in ("meta.json", "train.bin", "eval.bin", "tokenizer.json"))


def _prepare_data(cfg: TrainConfig, d: Dist, run_dir: Path, init: dict | None) -> tuple[dict, str, Path]:
    """(meta, tokenizer JSON, token folder). ``--data`` may be a job's output, which rank 0 tokenizes once
    into ``<run>/data`` while the others wait, or a folder that ``python -m trainer prepare`` wrote."""
    if is_prepared(cfg.data):
        src = Path(cfg.data)
        return json.loads((src / "meta.json").read_text()), (src / "tokenizer.json").read_text(), src
    tokenizer, data_dir = cfg.tokenizer, run_dir / "data"
    if init is not None and tokenizer is None:  # fine-tuning keeps the base model's tokenizer
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "base_tokenizer.json").write_text(init["tokenizer_json"])
        tokenizer = str(data_dir / "base_tokenizer.json")
    meta = None
    if d.master:
        meta = prepare(cfg.data, data_dir, tokenizer=tokenizer, vocab_size=cfg.vocab_size,
                       eval_fraction=cfg.eval_fraction, workers=cfg.tokenize_workers,
                       backend=cfg.tokenize_backend)
    d.barrier()
    if meta is None:
        meta = json.loads((data_dir / "meta.json").read_text())
    return meta, (data_dir / "tokenizer.json").read_text(), data_dir


def setup(cfg: TrainConfig, d: Dist) -> Session:
    """Data, model, optimizer, schedule, parallel wrapping, compilation, restored state."""
    run_dir, device = Path(cfg.run_dir), d.device
    run_dir.mkdir(parents=True, exist_ok=True)
    use_tf32(device)
    ckpt_path = run_dir / "ckpt.pt"
    resume = cfg.resume and ckpt_path.exists()
    ckpt = load_checkpoint(ckpt_path) if resume else None
    init = load_checkpoint(cfg.init_from) if cfg.init_from and not resume else None
    meta, tok_json, data_dir = _prepare_data(cfg, d, run_dir, init)
    train_tokens = open_tokens(data_dir / "train.bin", meta["dtype"])
    eval_tokens = open_tokens(data_dir / "eval.bin", meta["dtype"])

    # model and task
    base = ckpt or init
    arch = base.get("arch", "gpt") if base is not None else cfg.arch
    if base is not None and "task" in base:
        task_spec = dict(base["task"])
    else:
        task_spec = {"kind": "lm" if arch == "gpt" else "span", "window": cfg.block_size}
        if arch == "encdec":
            task_spec.update(noise_density=cfg.noise_density, mean_span=cfg.mean_span,
                             sentinel0=meta["vocab_size"], eot=meta["eot_id"], start=meta["eot_id"])
    if init is not None:
        mcfg = {**init["model_config"], "dropout": cfg.dropout, "grad_checkpoint": cfg.grad_checkpoint,
                "loss_impl": cfg.loss_impl}
        if mcfg["vocab_size"] < meta["vocab_size"]:
            raise ValueError("the base model's vocabulary is smaller than the tokenizer's")
    elif ckpt is not None:
        mcfg = dict(ckpt["model_config"])
    else:
        mcfg = model_config(cfg, meta, task_spec)
    torch.manual_seed(cfg.seed)
    raw = make_model(arch, mcfg)
    if base is not None:
        raw.load_state_dict(base["model"])
    if task_spec["window"] != cfg.block_size:
        log.info("block size %d comes from the checkpoint", task_spec["window"])
    frozen = raw.freeze_bottom(cfg.freeze_layers) if cfg.freeze_layers else []
    raw.to(device)
    task = make_task(arch, task_spec, train_tokens, eval_tokens, cfg.seed)

    # parallel wrapping (before the optimizer: FSDP replaces the parameters by shards)
    bf16 = device.type == "cuda" and cfg.dtype in ("auto", "bfloat16")
    par = Parallel(raw, d, cfg.parallel, cfg.bucket_mb, bf16)
    optimizer = _optimizer(raw, cfg, device, par.sharded)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    global_batch = cfg.batch_size * cfg.grad_accum * d.world
    start_step = 0
    if ckpt is not None:
        if ckpt["global_batch"] != global_batch:
            raise ValueError("resume needs the same global batch (batch_size * grad_accum * processes)")
        if ckpt.get("parallel", "ddp") == "fsdp" and not par.sharded or par.sharded and ckpt.get(
                "parallel", "ddp") != "fsdp":
            raise ValueError("resume needs the same --parallel mode as the run that wrote the checkpoint")
        par.load_optim_state(optimizer, ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        start_step = ckpt["step"]
        rng = ckpt["rng"]
        _set_rng_state(rng[d.rank] if d.rank < len(rng) else rng[0], device)
    else:
        torch.manual_seed(cfg.seed + d.rank)
        np.random.seed(cfg.seed + d.rank)
        random.seed(cfg.seed + d.rank)

    model = par.model
    if cfg.compile:
        mode = None if cfg.compile_mode == "default" else cfg.compile_mode
        if cfg.compile_scope == "blocks":
            raw.compile_blocks(mode)
        else:
            raw.compile_loss()
            model = torch.compile(model, mode=mode)

    stop = min(cfg.max_steps, cfg.stop_after) if cfg.stop_after else cfg.max_steps
    if arch == "gpt":
        flops_tok = raw.flops_per_token(task_spec["window"])
    else:
        flops_tok = raw.flops_per_token(task.shape.src_len, task.shape.tgt_len)
    return Session(
        cfg=cfg, d=d, run_dir=run_dir, ckpt_path=ckpt_path, meta=meta, tok_json=tok_json, arch=arch,
        task_spec=task_spec, task=task, raw=raw, par=par, model=model, optimizer=optimizer, sched=sched,
        start_step=start_step, stop_step=stop, frozen=frozen,
        metrics=Metrics(run_dir, d.master, cfg.tensorboard, start_step if ckpt is not None else None),
        progress=Progress(run_dir, d.master, start_step, stop, cfg.max_steps),
        global_batch=global_batch, tokens_per_step=global_batch * task.tokens_per_example, flops_tok=flops_tok,
    )


def _to_device(arrays: tuple[np.ndarray, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    out = []
    for a in arrays:
        t = torch.from_numpy(a)
        if device.type == "cuda":
            t = t.pin_memory()
        out.append(t.to(device, non_blocking=True))
    return tuple(out)


def evaluate(s: Session, step: int, on_log) -> dict:
    cfg, d = s.cfg, s.d
    loss, n = mean_loss(s.raw, s.task.eval_batches(cfg.batch_size, cfg.eval_iters, d.rank, d.world),
                        d.device, cfg.dtype)
    rec = {"step": step, "eval_loss": loss, "eval_ppl": math.exp(min(loss, 50.0)), "eval_tokens": n}
    _emit(s, rec, on_log)
    if d.master:
        log.info("step %d eval loss %.4f ppl %.2f", step, loss, rec["eval_ppl"])
    return rec


def _emit(s: Session, rec: dict, on_log) -> None:
    s.metrics.write(rec)
    s.progress.update(rec)
    if on_log:
        on_log(rec)


def save(s: Session, step: int) -> None:
    """Checkpoint (every rank takes part: RNG states are gathered, FSDP states unsharded)."""
    d = s.d
    rngs = [None] * d.world
    if d.on:
        dist.all_gather_object(rngs, _rng_state(d.device))
    else:
        rngs = [_rng_state(d.device)]
    model_state, optim_state = s.par.model_state(), s.par.optim_state(s.optimizer)
    if d.master:
        save_checkpoint(s.ckpt_path, {
            "model": model_state, "model_config": s.raw.cfg.to_dict(), "arch": s.arch, "task": s.task_spec,
            "train_config": asdict(s.cfg), "optimizer": optim_state, "scheduler": s.sched.state_dict(),
            "step": step, "data_position": step, "global_batch": s.global_batch, "rng": rngs,
            "parallel": "fsdp" if s.par.sharded else "ddp",
            "manifest_hash": s.meta["manifest_hash"], "tokenizer_hash": s.meta["tokenizer_hash"],
            "tokenizer_json": s.tok_json, "frozen": s.frozen,
        })
        s.progress.checkpointed(s.ckpt_path)
    d.barrier()


def train_loop(s: Session, on_log=None) -> dict:
    """Optimizer steps from start_step to stop_step: micro-batches, clipping, logging, evals, checkpoints."""
    cfg, d, device = s.cfg, s.d, s.d.device
    B, accum, stop = cfg.batch_size, cfg.grad_accum, s.stop_step

    def fetch(step: int, micro: int) -> tuple[torch.Tensor, ...]:
        return _to_device(s.task.batch(step, B, micro, accum, d.rank, d.world), device)

    fixed = fetch(0, 0) if cfg.synthetic else None
    s.model.train()
    losses: list[float] = []
    step = s.start_step
    nxt = fixed or (fetch(step, 0) if step < stop else None)
    t_last, steps_since = time.perf_counter(), 0
    loss_acc = torch.zeros((), device=device)
    with sdpa_context(cfg.sdpa_backend):
        while step < stop:
            if cfg.eval_interval and step % cfg.eval_interval == 0 and step > s.start_step:
                evaluate(s, step, on_log)
                t_last, steps_since = time.perf_counter(), 0
            for micro in range(accum):
                batch = nxt
                with s.par.no_sync(micro == accum - 1):
                    with autocast_for(device, cfg.dtype):
                        loss = s.model(*batch) / accum
                    loss.backward()
                loss_acc += loss.detach()
                if fixed is None:  # prefetch the next micro-batch while the GPU works
                    ns, nm = (step, micro + 1) if micro + 1 < accum else (step + 1, 0)
                    nxt = fetch(ns, nm) if ns < stop else None
            norm = torch.nn.utils.clip_grad_norm_(s.raw.parameters(), cfg.grad_clip) if cfg.grad_clip else None
            s.optimizer.step()
            s.sched.step()
            s.optimizer.zero_grad(set_to_none=True)
            step += 1
            steps_since += 1
            if step % cfg.log_interval == 0 or step == stop:
                if d.on:
                    dist.all_reduce(loss_acc)  # SUM: gloo has no AVG
                lossv = loss_acc.item() / steps_since / d.world
                dt = time.perf_counter() - t_last
                tps = s.tokens_per_step * steps_since / dt
                rec = {"step": step, "loss": lossv, "lr": s.sched.get_last_lr()[0],
                       "tokens": step * s.tokens_per_step, "step_time": dt / steps_since, "tok_per_s": tps,
                       "grad_norm": grad_norm_value(norm)}
                if cfg.peak_tflops:
                    rec["mfu"] = s.flops_tok * tps / (cfg.peak_tflops * 1e12)
                losses.append(lossv)
                _emit(s, rec, on_log)
                if d.master:
                    log.info("step %d loss %.4f lr %.2e %.0f tok/s", step, lossv, rec["lr"], tps)
                loss_acc.zero_()
                t_last, steps_since = time.perf_counter(), 0
            if cfg.ckpt_interval and step % cfg.ckpt_interval == 0 and step < stop:
                save(s, step)
                t_last = time.perf_counter()
    if cfg.eval_interval and step > s.start_step:
        evaluate(s, step, on_log)
    save(s, step)
    s.metrics.close(s.run_dir / "loss.png" if cfg.plot else None)
    s.progress.finish()
    return {"steps": step, "losses": losses, "tokens": step * s.tokens_per_step, "checkpoint": str(s.ckpt_path),
            "manifest_hash": s.meta["manifest_hash"], "tokenizer_hash": s.meta["tokenizer_hash"]}


def run(cfg: TrainConfig, on_log=None, dist_ctx: Dist | None = None) -> dict:
    """Train as configured; returns a summary. on_log(record) sees every metrics record (all ranks)."""
    d = dist_ctx or Dist(cfg.device)
    s = None
    try:
        s = setup(cfg, d)
        return train_loop(s, on_log)
    except BaseException as e:
        if s is not None:
            s.progress.finish(error=f"{type(e).__name__}: {e}")
        elif d.master:
            Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
            Progress(Path(cfg.run_dir), True, 0, cfg.max_steps, cfg.max_steps).finish(f"{type(e).__name__}: {e}")
        raise
    finally:
        if dist_ctx is None:
            d.close()


def build_parser(prog: str = "curator train") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in fields(TrainConfig):
        flag, meta = "--" + f.name.replace("_", "-"), f.metadata
        kw = {"default": f.default, "help": meta["help"]}
        if f.name == "grad_checkpoint":  # a mode; the bare flag (and --no-) kept from its boolean days
            ap.add_argument(flag, nargs="?", const="full", choices=CHECKPOINT_MODES, **kw)
            ap.add_argument("--no-grad-checkpoint", dest="grad_checkpoint", action="store_const", const="none",
                            help="the same as --grad-checkpoint none")
        elif f.type in ("bool", bool):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        else:
            typ = {"int": int, "float": float}.get(str(f.type), str)
            ap.add_argument(flag, type=typ, choices=meta.get("choices"), **kw)
    ap.add_argument("--config", help="a YAML or JSON file of these options (flags given here win)")
    return ap


def config_from_args(argv: list[str] | None, prog: str = "curator train") -> TrainConfig:
    ap = build_parser(prog)
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
    try:
        return TrainConfig(**values)
    except ValueError as e:
        ap.error(str(e))


def main(argv: list[str] | None = None, prog: str = "curator train") -> int:
    cfg = config_from_args(argv, prog)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        summary = run(cfg)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "losses"}))
    return 0


__all__ = ["TrainConfig", "run", "main", "lr_factor", "setup", "train_loop", "Session", "Dist"]
