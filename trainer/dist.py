"""Processes and data parallelism: the process group, DDP, and sharded data parallel (FSDP2).

``parallel="ddp"`` keeps a full replica per process and all-reduces gradients (fastest while the model,
its gradients and AdamW's two moments fit one GPU: about 16 bytes a parameter plus activations).
``parallel="fsdp"`` shards parameters, gradients and optimizer state over the processes with
``torch.distributed.fsdp.fully_shard``, one unit per transformer block plus the root (embeddings, final
norm, head); each block's parameters are all-gathered just before its forward and backward and its
gradients reduce-scattered after, so a process holds about 16/N bytes a parameter. On CUDA with bf16
the shards compute in bf16 and reduce in float32. The checkpoint holds the full (unsharded) state
either way, so a run trained with FSDP loads into one process for evaluation or export.
"""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch
import torch.distributed as dist

PARALLEL = ("ddp", "fsdp")


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


def blocks_of(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks of a GPT or an encoder-decoder (the units FSDP shards by)."""
    if hasattr(model, "blocks"):
        return list(model.blocks)
    return [*model.encoder, *model.decoder]


class Parallel:
    """The model as the loop calls it, wrapped for the chosen parallelism, and its state in full."""

    def __init__(self, raw: torch.nn.Module, d: Dist, mode: str = "ddp", bucket_mb: int = 25,
                 bf16: bool = False) -> None:
        if mode not in PARALLEL:
            raise ValueError(f"parallel must be one of {PARALLEL}, not {mode!r}")
        self.raw, self.d, self.mode, self.ddp = raw, d, mode if d.on else "none", None
        self.model = raw
        if self.mode == "ddp":
            from torch.nn.parallel import DistributedDataParallel as DDP

            dev = d.device
            self.model = self.ddp = DDP(raw, device_ids=[dev.index] if dev.type == "cuda" else None,
                                        bucket_cap_mb=bucket_mb, gradient_as_bucket_view=True)
        elif self.mode == "fsdp":
            from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

            mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else None
            kw = {"mp_policy": mp} if mp is not None else {}
            for b in blocks_of(raw):
                fully_shard(b, **kw)
            fully_shard(raw, **kw)  # the root: embeddings, final norm, (tied) head

    @property
    def sharded(self) -> bool:
        return self.mode == "fsdp"

    def no_sync(self, last_micro: bool):
        """Skip the gradient all-reduce / reduce-scatter on micro-batches before the last."""
        if self.mode == "ddp" and not last_micro:
            return self.ddp.no_sync()
        if self.mode == "fsdp":
            self.raw.set_requires_gradient_sync(last_micro)
        return nullcontext()

    def model_state(self) -> dict:
        """The full state dict (every rank must call it under FSDP; CPU tensors there)."""
        if not self.sharded:
            return self.raw.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(self.raw, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def optim_state(self, opt: torch.optim.Optimizer) -> dict:
        if not self.sharded:
            return opt.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(self.raw, opt,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def load_optim_state(self, opt: torch.optim.Optimizer, state: dict) -> None:
        if not self.sharded:
            opt.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(self.raw, opt, state, options=StateDictOptions(full_state_dict=True))


def grad_norm_value(norm) -> float | None:
    """A float of clip_grad_norm_'s result (a DTensor under FSDP)."""
    if norm is None:
        return None
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return float(norm)
