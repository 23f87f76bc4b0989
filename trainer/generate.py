"""Text generation from a checkpoint: temperature, top-k and top-p (nucleus) sampling.

Temperature 0 is greedy decoding (the most likely token every time). A GPT continues the prompt; an
encoder-decoder reads the prompt as its source (``<extra_id_k>`` markers become sentinels; without one,
a sentinel is appended, asking for what follows) and writes the target: sentinels and the spans they
stand for.
"""

from __future__ import annotations

import argparse
import sys

import torch

from trainer.checkpoint import load_for_inference
from trainer.device import autocast_for, pick_device


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Logits (B, V) with everything outside the top-k and outside the top-p mass set to -inf."""
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # tokens whose predecessors already hold top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, generator: torch.Generator | None = None,
             stop_id: int | None = None) -> torch.Tensor:
    """Extend idx (B, T) by up to max_new_tokens tokens; the context is cropped to the block size."""
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    block = model.cfg.block_size
    for _ in range(max_new_tokens):
        with autocast_for(idx.device):
            logits = model(idx[:, -block:])[:, -1, :].float()
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            probs = filter_logits(logits / temperature, top_k, top_p).softmax(-1)
            nxt = torch.multinomial(probs, 1, generator=generator)
        idx = torch.cat([idx, nxt], dim=1)
        if stop_id is not None and bool((nxt == stop_id).all()):
            break
    return idx


@torch.no_grad()
def generate_seq2seq(model, src: torch.Tensor, max_new_tokens: int, start_id: int, temperature: float = 1.0,
                     top_k: int = 0, top_p: float = 1.0, generator: torch.Generator | None = None,
                     stop_id: int | None = None) -> torch.Tensor:
    """Target ids (B, <= 1 + max_new_tokens) decoded from source ids src (B, S), starting at start_id."""
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    memory = model.encode(src)
    out = torch.full((src.shape[0], 1), start_id, dtype=torch.long, device=src.device)
    limit = model.cfg.tgt_len
    for _ in range(min(max_new_tokens, limit - 1)):
        with autocast_for(src.device):
            h = model.decode(out, memory)[:, -1]
            logits = model.lm_head(h)[:, : model.cfg.total_vocab].float()
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            probs = filter_logits(logits / temperature, top_k, top_p).softmax(-1)
            nxt = torch.multinomial(probs, 1, generator=generator)
        out = torch.cat([out, nxt], dim=1)
        if stop_id is not None and bool((nxt == stop_id).all()):
            break
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer generate", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="a trainer checkpoint (ckpt.pt)")
    ap.add_argument("--prompt", default="", help="text to continue (encdec: the source)")
    ap.add_argument("--max-new-tokens", type=int, default=100, help="tokens to generate at most")
    ap.add_argument("--temperature", type=float, default=0.8, help="0: greedy")
    ap.add_argument("--top-k", type=int, default=0, help="sample among the k most likely tokens (0: all)")
    ap.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1: off)")
    ap.add_argument("--num-samples", type=int, default=1, help="samples to print")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    a = ap.parse_args(argv)
    device = pick_device(a.device)
    try:
        model, tok, ckpt = load_for_inference(a.checkpoint, device)
    except (FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from trainer.tokenizer import EOT

    eot = tok.token_to_id(EOT)
    g = torch.Generator(device=device).manual_seed(a.seed)
    task = ckpt.get("task") or {}
    if task.get("kind") == "span":
        from trainer.span import SENTINEL_TEXT, decode_with_sentinels, encode_with_sentinels

        s0 = task["sentinel0"]
        prompt = a.prompt if "<extra_id_" in a.prompt else a.prompt + SENTINEL_TEXT.format(0)
        src = torch.tensor([encode_with_sentinels(tok, prompt, s0)[-model.cfg.src_len:]], device=device)
        for _ in range(a.num_samples):
            out = generate_seq2seq(model, src, a.max_new_tokens, task["start"], a.temperature, a.top_k, a.top_p,
                                   g, stop_id=task["eot"])
            print(decode_with_sentinels(tok, out[0, 1:].tolist(), s0))
            print("-" * 40)
        return 0
    ids = tok.encode(a.prompt, add_special_tokens=False).ids or ([eot] if eot is not None else [0])
    for _ in range(a.num_samples):
        out = generate(model, torch.tensor([ids], device=device), a.max_new_tokens, a.temperature, a.top_k,
                       a.top_p, g, stop_id=eot)
        print(tok.decode(out[0].tolist()))
        print("-" * 40)
    return 0
