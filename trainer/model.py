"""Decoder-only transformer (GPT) built from the classic components.

Token embeddings, positional information (learned table or rotary), causal multi-head self-attention
through ``F.scaled_dot_product_attention``, a GELU MLP, pre-LayerNorm residual blocks, a final LayerNorm
and an output head tied to the token embeddings; GPT-2-style initialisation.

Shapes in comments: B batch, T time, C = n_embd, nh heads, hs = C // nh head size, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


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
    grad_checkpoint: bool = False

    def __post_init__(self) -> None:
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
    "124M": (12, 12, 768),
    "350M": (24, 16, 1024),
}


def preset(name: str, **overrides) -> GPTConfig:
    """A GPTConfig for a named size (tiny .. 350M); keyword overrides win."""
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


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rope)
        return x + self.mlp(self.ln_2(x))


def ce_chunk(logits: torch.Tensor, targets: torch.Tensor, scale: torch.Tensor):
    """Summed cross-entropy of one chunk of logits (n, V), and its gradient times scale (as logits' dtype).

    Targets < 0 contribute neither loss nor gradient. Written as a reduction plus one pointwise pass
    (the one-hot is a comparison with an index ramp, not a scatter), so compiled on the GPU it reads the
    logits for the log-sum-exp, reads them once more and writes the gradient once.
    """
    lf = logits.to(torch.promote_types(logits.dtype, torch.float32))
    lse = torch.logsumexp(lf, dim=-1)
    ok = targets >= 0
    t = targets.clamp(min=0)
    loss = ((lse - lf.gather(1, t[:, None]).squeeze(1)) * ok).sum()
    onehot = torch.arange(lf.shape[1], device=lf.device)[None, :] == t[:, None]
    g = (torch.exp(lf - lse[:, None]) - onehot.to(lf.dtype)) * (ok.to(lf.dtype) * scale)[:, None]
    return loss, g.to(logits.dtype)


class _FusedLinearCE(torch.autograd.Function):
    """Mean cross-entropy of (h @ w.T) against targets, computed chunk by chunk.

    The gradients are computed in the forward pass, so the (N, V) logits are never all in memory at
    once and never stored for backward (the idea of fused linear cross-entropy kernels).
    """

    @staticmethod
    def forward(ctx, h, w, targets, chunk, dtype, chunk_fn):
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        hc_all, wc = h.to(dtype), w.to(dtype)
        valid = (targets >= 0).sum().clamp(min=1)
        scale = 1.0 / valid.to(torch.promote_types(dtype, torch.float32))
        loss = torch.zeros((), dtype=scale.dtype, device=h.device)
        gh = torch.empty_like(hc_all) if need_h else None
        gw = torch.zeros(w.shape, dtype=torch.promote_types(w.dtype, torch.float32),
                         device=w.device) if need_w else None
        for s in range(0, h.shape[0], chunk):
            hc = hc_all[s:s + chunk]
            loss_c, g = chunk_fn(hc @ wc.t(), targets[s:s + chunk], scale)
            loss = loss + loss_c
            if need_h:
                gh[s:s + chunk] = g @ wc
            if need_w:
                gw += (g.t() @ hc).to(gw.dtype)
        ctx.save_for_backward(gh if need_h else torch.empty(0), gw if need_w else torch.empty(0))
        ctx.need, ctx.dtypes = (need_h, need_w), (h.dtype, w.dtype)
        return loss * scale

    @staticmethod
    def backward(ctx, grad_out):
        gh, gw = ctx.saved_tensors
        (need_h, need_w), (h_dtype, w_dtype) = ctx.need, ctx.dtypes
        dh = (gh * grad_out.to(gh.dtype)).to(h_dtype) if need_h else None
        dw = (gw * grad_out).to(w_dtype) if need_w else None
        return dh, dw, None, None, None, None


@torch.compiler.disable
def fused_linear_cross_entropy(h: torch.Tensor, w: torch.Tensor, targets: torch.Tensor,
                               chunk: int = 8192, chunk_fn=ce_chunk) -> torch.Tensor:
    """Mean CE of logits h @ w.T (h: (N, C), w: (V, C), targets: (N,)); see _FusedLinearCE.

    Under autocast the matmuls run in the autocast dtype; the gradient of w comes back in w's dtype.
    """
    dtype = h.dtype
    if torch.is_autocast_enabled(h.device.type):
        dtype = torch.get_autocast_dtype(h.device.type)
    with torch.autocast(h.device.type, enabled=False):
        return _FusedLinearCE.apply(h, w, targets, chunk, dtype, chunk_fn)


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
            if self.cfg.grad_checkpoint and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, rope, use_reentrant=False)
            else:
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
