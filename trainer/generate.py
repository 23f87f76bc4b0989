"""Text generation from a checkpoint: temperature, top-k and top-p (nucleus) sampling.

Temperature 0 is greedy decoding (the most likely token every time).
"""

from __future__ import annotations

import argparse
import sys

import torch

from trainer.checkpoint import load_for_inference
from trainer.evaluate import autocast_for, pick_device


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer generate", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--prompt", default="")
    ap.add_argument("--max-new-tokens", type=int, default=100)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-k", type=int, default=0)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--num-samples", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    a = ap.parse_args(argv)
    device = pick_device(a.device)
    try:
        model, tok, _ = load_for_inference(a.checkpoint, device)
    except (FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from trainer.tokenizer import EOT

    eot = tok.token_to_id(EOT)
    ids = tok.encode(a.prompt, add_special_tokens=False).ids or ([eot] if eot is not None else [0])
    g = torch.Generator(device=device).manual_seed(a.seed)
    for _ in range(a.num_samples):
        out = generate(model, torch.tensor([ids], device=device), a.max_new_tokens, a.temperature, a.top_k,
                       a.top_p, g, stop_id=eot)
        print(tok.decode(out[0].tolist()))
        print("-" * 40)
    return 0
