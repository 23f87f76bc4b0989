"""Encoder-decoder transformer (the original design of "Attention Is All You Need"), from the GPT's parts.

Encoder: token embeddings + positions, then blocks of (bidirectional) multi-head self-attention and a
GELU feed-forward, each in a pre-LayerNorm residual branch, and a final LayerNorm. Decoder: the same
with masked (causal) self-attention, plus encoder-decoder cross-attention (queries from the decoder,
keys and values from the encoder's output) between the two. Token embeddings are shared by source,
target and output head (``shared_embeddings``), or separate for source and target with the head tied to
the target table. Positions are sinusoidal (fixed; token embeddings scaled by sqrt(C) as in the paper)
or learned tables, one per side.

The vocabulary is the tokenizer's plus ``n_sentinels`` sentinel ids after it (the span-corruption task
replaces each masked span by one sentinel; see ``trainer.span``).

Shapes: B batch, S source length, T target length, C = n_embd, nh heads, hs = C // nh, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from trainer.loss import ce_chunk, fused_linear_cross_entropy
from trainer.model import MLP, checkpoint_mode, checkpointed


@dataclass
class EncDecConfig:
    vocab_size: int = 8192  # the tokenizer's; sentinel ids follow
    n_sentinels: int = 64
    src_len: int = 256  # longest source (encoder input)
    tgt_len: int = 128  # longest target (decoder input)
    n_enc_layer: int = 6
    n_dec_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.0
    bias: bool = True
    pos: str = "sinusoidal"  # "sinusoidal" or "learned"
    shared_embeddings: bool = True
    pad_vocab_to: int = 128
    loss_impl: str = "fused"
    loss_chunk: int = 8192
    grad_checkpoint: str = "none"

    def __post_init__(self) -> None:
        self.grad_checkpoint = checkpoint_mode(self.grad_checkpoint)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        if self.pos not in ("sinusoidal", "learned"):
            raise ValueError(f"encoder-decoder pos must be 'sinusoidal' or 'learned', not {self.pos!r}")
        if self.loss_impl not in ("fused", "plain"):
            raise ValueError(f"loss_impl must be 'fused' or 'plain', not {self.loss_impl!r}")

    @property
    def total_vocab(self) -> int:
        return self.vocab_size + self.n_sentinels

    @property
    def padded_vocab(self) -> int:
        m = max(1, self.pad_vocab_to)
        return (self.total_vocab + m - 1) // m * m

    def to_dict(self) -> dict:
        return asdict(self)


def sinusoids(length: int, dim: int) -> torch.Tensor:
    """The fixed (length, dim) table: sin on even, cos on odd channels, wavelengths 2pi .. 10000*2pi."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)[:, : dim // 2]
    return table


class Attention(nn.Module):
    """Multi-head attention: self-attention (causal or not) on x, or cross-attention from x to memory."""

    def __init__(self, cfg: EncDecConfig, causal: bool, cross: bool) -> None:
        super().__init__()
        C = cfg.n_embd
        self.n_head, self.causal, self.cross = cfg.n_head, causal, cross
        if cross:
            self.q = nn.Linear(C, C, bias=cfg.bias)
            self.kv = nn.Linear(C, 2 * C, bias=cfg.bias)
        else:
            self.qkv = nn.Linear(C, 3 * C, bias=cfg.bias)
        self.c_proj = nn.Linear(C, C, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        B, L, C = t.shape
        return t.view(B, L, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, L, hs)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        if self.cross:
            q = self.q(x)
            k, v = self.kv(memory).split(C, dim=2)  # (B, S, C) each
        else:
            q, k, v = self.qkv(x).split(C, dim=2)
        y = F.scaled_dot_product_attention(
            self._heads(q), self._heads(k), self._heads(v), is_causal=self.causal,
            dropout_p=self.dropout if self.training else 0.0,
        )  # (B, nh, T, hs)
        return self.resid_drop(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))


class EncoderBlock(nn.Module):
    def __init__(self, cfg: EncDecConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = Attention(cfg, causal=False, cross=False)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.ac = cfg.grad_checkpoint

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return checkpointed(self._forward, self.ac if self.training else "none", x)


class DecoderBlock(nn.Module):
    def __init__(self, cfg: EncDecConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = Attention(cfg, causal=True, cross=False)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.cross = Attention(cfg, causal=False, cross=True)
        self.ln_3 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.ac = cfg.grad_checkpoint

    def _forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        x = x + self.cross(self.ln_2(x), memory)
        return x + self.mlp(self.ln_3(x))

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return checkpointed(self._forward, self.ac if self.training else "none", x, memory)


class EncoderDecoder(nn.Module):
    def __init__(self, cfg: EncDecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        C, V = cfg.n_embd, cfg.padded_vocab
        self.tgt_wte = nn.Embedding(V, C)
        self.src_wte = self.tgt_wte if cfg.shared_embeddings else nn.Embedding(V, C)
        if cfg.pos == "learned":
            self.src_wpe, self.tgt_wpe = nn.Embedding(cfg.src_len, C), nn.Embedding(cfg.tgt_len, C)
        else:
            self.src_wpe = self.tgt_wpe = None
            self.register_buffer("sinusoids", sinusoids(max(cfg.src_len, cfg.tgt_len), C), persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_enc_layer))
        self.ln_enc = nn.LayerNorm(C, bias=cfg.bias)
        self.decoder = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_dec_layer))
        self.ln_dec = nn.LayerNorm(C, bias=cfg.bias)
        self.lm_head = nn.Linear(C, V, bias=False)
        self.lm_head.weight = self.tgt_wte.weight  # tied to the target embeddings
        self._ce_chunk = ce_chunk
        self.apply(self._init_weights)
        n_res = 2 * cfg.n_enc_layer + 3 * cfg.n_dec_layer  # residual branches
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(n_res))

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def compile_loss(self) -> None:
        self._ce_chunk = torch.compile(ce_chunk, dynamic=False)

    def compile_blocks(self, mode: str | None = None) -> None:
        for b in [*self.encoder, *self.decoder]:
            b.compile(mode=mode, dynamic=False)
        self.compile_loss()

    def num_params(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())  # tied / shared tables counted once
        if non_embedding:
            n -= self.tgt_wte.weight.numel()
            if self.src_wte is not self.tgt_wte:
                n -= self.src_wte.weight.numel()
            if self.src_wpe is not None:
                n -= self.src_wpe.weight.numel() + self.tgt_wpe.weight.numel()
        return n

    def flops_per_token(self, src_len: int | None = None, tgt_len: int | None = None) -> float:
        """Model FLOPs per trained token (source + target tokens), 6N-style with attention terms."""
        c = self.cfg
        S, T, d = src_len or c.src_len, tgt_len or c.tgt_len, c.n_embd
        enc = 12 * d * d * c.n_enc_layer  # params per encoder layer (attention 4d^2 + MLP 8d^2)
        dec = 16 * d * d * c.n_dec_layer  # plus the cross-attention's 4d^2
        fl = 6.0 * (enc * S + dec * T + c.total_vocab * d * T)
        fl += 12.0 * d * (c.n_enc_layer * S * S + c.n_dec_layer * (T * T + T * S))
        return fl / (S + T)

    def _embed(self, idx: torch.Tensor, wte: nn.Embedding, wpe: nn.Embedding | None, limit: int) -> torch.Tensor:
        L = idx.shape[1]
        if L > limit:
            raise ValueError(f"sequence of {L} tokens is longer than the model's {limit}")
        pos = torch.arange(L, device=idx.device)
        if wpe is not None:
            x = wte(idx) + wpe(pos)
        else:
            x = wte(idx) * math.sqrt(self.cfg.n_embd) + self.sinusoids[:L].to(wte.weight.dtype)
        return self.drop(x)

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        """Encoder output (B, S, C) for source ids (B, S): every position sees the whole source."""
        x = self._embed(src, self.src_wte, self.src_wpe, self.cfg.src_len)
        for block in self.encoder:
            x = block(x)
        return self.ln_enc(x)

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Decoder hidden states (B, T, C): position t sees target inputs 0..t and the whole memory."""
        x = self._embed(tgt_in, self.tgt_wte, self.tgt_wpe, self.cfg.tgt_len)
        for block in self.decoder:
            x = block(x, memory)
        return self.ln_dec(x)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor | None = None):
        """Logits (B, T, V) when tgt_out is None, else the mean cross-entropy (tgt_out < 0 ignored)."""
        h = self.decode(tgt_in, self.encode(src))
        V = self.cfg.total_vocab
        if tgt_out is None:
            return self.lm_head(h)[..., :V]
        if self.cfg.loss_impl == "fused":
            return fused_linear_cross_entropy(h.reshape(-1, h.shape[-1]), self.lm_head.weight,
                                              tgt_out.reshape(-1), self.cfg.loss_chunk, self._ce_chunk)
        logits = self.lm_head(h).float()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=-1)

    def freeze_bottom(self, k: int) -> list[str]:
        """Freeze the embeddings and the first k encoder blocks; return the frozen names."""
        if not 0 <= k <= self.cfg.n_enc_layer:
            raise ValueError(f"cannot freeze {k} of {self.cfg.n_enc_layer} encoder blocks")
        frozen = []
        mods = [("tgt_wte", self.tgt_wte), ("src_wte", self.src_wte)]
        mods += [("src_wpe", self.src_wpe), ("tgt_wpe", self.tgt_wpe)] if self.src_wpe is not None else []
        mods += [(f"encoder.{i}", self.encoder[i]) for i in range(k)]
        for prefix, mod in mods:
            for name, p in mod.named_parameters():
                if p.requires_grad:
                    p.requires_grad_(False)
                    frozen.append(f"{prefix}.{name}")
        return frozen
