"""Decoder-only transformer (GPT) built from the classic components.

Token embeddings, positional information (learned table or rotary), causal multi-head self-attention
through ``F.scaled_dot_product_attention``, a GELU MLP, pre-LayerNorm residual blocks, a final LayerNorm
and an output head tied to the token embeddings; GPT-2-style initialisation.

Activation checkpointing per block (``grad_checkpoint``): ``"full"`` keeps only each block's input and
recomputes the whole block in the backward pass; ``"selective"`` keeps the outputs of the matmuls and
recomputes only what is cheap (attention, layer norms, GELU, residual adds, rotary), so the backward
pass runs no extra matmul.

Shapes in comments: B batch, T time, C = n_embd, nh heads, hs = C // nh head size, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

from trainer.loss import ce_chunk, fused_linear_cross_entropy

CHECKPOINT_MODES = ("none", "full", "selective")


@dataclass
class GPTConfig:
    vocab_size: int = 50257
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True
    pos: str = "learned"  # "learned" or "rope"
    rope_base: float = 10000.0
    pad_vocab_to: int = 128  # embedding rows rounded up to a multiple of this (faster matmuls)
    loss_impl: str = "fused"  # "fused": chunked linear+cross-entropy, logits never stored; "plain"
    loss_chunk: int = 8192  # tokens per chunk of the fused loss
    grad_checkpoint: str = "none"  # "none", "full" or "selective" (see the module docstring)

    def __post_init__(self) -> None:
        self.grad_checkpoint = checkpoint_mode(self.grad_checkpoint)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        if self.pos not in ("learned", "rope"):
            raise ValueError(f"pos must be 'learned' or 'rope', not {self.pos!r}")
        if self.pos == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError("rotary positions need an even head size")
        if self.loss_impl not in ("fused", "plain"):
            raise ValueError(f"loss_impl must be 'fused' or 'plain', not {self.loss_impl!r}")

    @property
    def padded_vocab(self) -> int:
        m = max(1, self.pad_vocab_to)
        return (self.vocab_size + m - 1) // m * m

    def to_dict(self) -> dict:
        return asdict(self)


# name -> (n_layer, n_head, n_embd)
PRESETS: dict[str, tuple[int, int, int]] = {
    "tiny": (2, 2, 64),
    "mini": (4, 4, 128),
    "small": (6, 6, 384),
    "base": (8, 8, 512),
    "124M": (12, 12, 768),
    "350M": (24, 16, 1024),
    "1.3B": (24, 16, 2048),
    "2.7B": (32, 32, 2560),
}


def checkpoint_mode(value: str | bool | None) -> str:
    """'none', 'full' or 'selective'; True/False (older checkpoints and flags) mean 'full'/'none'."""
    if value is None or value is False:
        return "none"
    if value is True:
        return "full"
    v = str(value).lower()
    v = {"true": "full", "false": "none", "1": "full", "0": "none", "off": "none"}.get(v, v)
    if v not in CHECKPOINT_MODES:
        raise ValueError(f"grad_checkpoint must be one of {CHECKPOINT_MODES}, not {value!r}")
    return v


# aten ops whose outputs selective checkpointing keeps: the matmuls (expensive to recompute)
_KEEP = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default}


def _keep_matmuls(ctx, op, *args, **kwargs) -> CheckpointPolicy:
    return CheckpointPolicy.MUST_SAVE if op in _KEEP else CheckpointPolicy.PREFER_RECOMPUTE


def selective_context():
    """Context pair for ``torch.utils.checkpoint``: save matmul outputs, recompute everything else."""
    return create_selective_checkpoint_contexts(_keep_matmuls)


def preset(name: str, **overrides) -> GPTConfig:
    """A GPTConfig for a named size (tiny .. 2.7B); keyword overrides win."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    n_layer, n_head, n_embd = PRESETS[name]
    return GPTConfig(**{"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd, **overrides})


def rope_tables(block_size: int, head_size: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (T, hs/2) for rotary position embeddings."""
    inv = 1.0 / (base ** (torch.arange(0, head_size, 2, dtype=torch.float32) / head_size))
    ang = torch.outer(torch.arange(block_size, dtype=torch.float32), inv)
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the head dimension of x (B, nh, T, hs)."""
    x1, x2 = x.float().chunk(2, dim=-1)
    out = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.type_as(x)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # fused q, k, v
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if rope is not None:
            cos, sin = rope
            q, k = apply_rope(q, cos[:T], sin[:T]), apply_rope(k, cos[:T], sin[:T])
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


def checkpointed(fn, mode: str, *args):
    """fn(*args), under activation checkpointing of the given mode when training with gradients."""
    if mode == "none" or not torch.is_grad_enabled():
        return fn(*args)
    kw = {"context_fn": selective_context} if mode == "selective" else {}
    return checkpoint(fn, *args, use_reentrant=False, **kw)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.ac = cfg.grad_checkpoint

    def _forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rope)
        return x + self.mlp(self.ln_2(x))

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        # inside forward, so a compiled block compiles its checkpointing too (selective needs that)
        return checkpointed(self._forward, self.ac if self.training else "none", x, rope)


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.padded_vocab, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd) if cfg.pos == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.padded_vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying
        if cfg.pos == "rope":
            cos, sin = rope_tables(cfg.block_size, cfg.n_embd // cfg.n_head, cfg.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self._ce_chunk = ce_chunk
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # scaled init of residual projections (GPT-2)
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def compile_loss(self) -> None:
        """Compile the fused loss's per-chunk kernel (the fused loss itself runs outside torch.compile)."""
        self._ce_chunk = torch.compile(ce_chunk, dynamic=False)

    def compile_blocks(self, mode: str | None = None) -> None:
        """Regional compilation: each block compiled (one compiled code shared by all), and the loss.

        Far less compile time than compiling the whole model; autograd still sees one node per block,
        so DDP's all-reduce of early buckets overlaps the backward of the later blocks.
        """
        for b in self.blocks:
            b.compile(mode=mode, dynamic=False)
        self.compile_loss()

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (tied head counted once); non_embedding drops token+position tables."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wte.weight.numel()
        if self.wpe is not None:
            n -= self.wpe.weight.numel() if non_embedding else 0
        return n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Model FLOPs per trained token: 6N + 12*L*d*T (N without position table, real vocab)."""
        c = self.cfg
        t = seq_len or c.block_size
        n = self.num_params(non_embedding=True) + c.vocab_size * c.n_embd
        return 6.0 * n + 12.0 * c.n_layer * c.n_embd * t

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """Final-normed hidden states (B, T, C) for token ids idx (B, T)."""
        B, T = idx.shape
        if T > self.cfg.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than block_size {self.cfg.block_size}")
        x = self.wte(idx)
        rope = None
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(T, device=idx.device))
        else:
            rope = (self.rope_cos, self.rope_sin)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, rope)
        return self.ln_f(x)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, V) when targets is None, else the mean cross-entropy loss (targets < 0 ignored)."""
        h = self.hidden(idx)
        V = self.cfg.vocab_size
        if targets is None:
            return self.lm_head(h)[..., :V]
        if self.cfg.loss_impl == "fused":
            return fused_linear_cross_entropy(
                h.reshape(-1, h.shape[-1]), self.lm_head.weight, targets.reshape(-1), self.cfg.loss_chunk,
                self._ce_chunk,
            )
        logits = self.lm_head(h)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)

    def freeze_bottom(self, k: int) -> list[str]:
        """Freeze the token/position embeddings and the first k blocks; return the frozen names.

        The output head is tied to the token embeddings, so it stays frozen too.
        """
        if not 0 <= k <= self.cfg.n_layer:
            raise ValueError(f"cannot freeze {k} of {self.cfg.n_layer} blocks")
        frozen = []
        mods = [("wte", self.wte)] + ([("wpe", self.wpe)] if self.wpe is not None else [])
        mods += [(f"blocks.{i}", self.blocks[i]) for i in range(k)]
        for prefix, mod in mods:
            for name, p in mod.named_parameters():
                p.requires_grad_(False)
                frozen.append(f"{prefix}.{name}")
        return frozen
