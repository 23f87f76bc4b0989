"""Evaluation: held-out loss/perplexity on a Parquet split, and a multiple-choice log-likelihood scorer.

The multiple-choice file is JSONL, one question a line (the shape of HellaSwag / ARC):
``{"context": "...", "choices": ["...", "..."], "answer": 1}``. Each choice is scored by the sum of the
log-probabilities of its tokens after the context (and, as reported too, that sum divided by the
choice's token count); the prediction is the best-scoring choice.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trainer.checkpoint import load_for_inference
from trainer.data import Source, encode_texts, eval_windows, iter_texts
from trainer.tokenizer import eot_id

log = logging.getLogger(__name__)


def pick_device(name: str = "auto") -> torch.device:
    """'auto': the first GPU when there is one, else the CPU."""
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


def autocast_for(device: torch.device, dtype: str = "auto"):
    """bf16 autocast on CUDA (dtype 'auto' or 'bfloat16'), nothing otherwise."""
    if device.type == "cuda" and dtype in ("auto", "bfloat16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def mean_loss(model: torch.nn.Module, batches: Iterable[tuple[np.ndarray, np.ndarray]],
              device: torch.device, dtype: str = "auto") -> tuple[float, int]:
    """Token-weighted mean cross-entropy over batches on this process, and the token count.

    Under torch.distributed the sums are all-reduced, so every rank gets the global mean.
    """
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)
    for x, y in batches:
        xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        with autocast_for(device, dtype):
            loss = model(xt, yt)
        total[0] += loss.double() * yt.numel()
        total[1] += yt.numel()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(total)
    model.train(was_training)
    n = int(total[1].item())
    return (total[0].item() / n if n else float("nan")), n


def split_loss(model, tok, parquet_files: list[str], block_size: int, batch_size: int, device,
               max_batches: int = 0) -> dict:
    """Loss and perplexity of the model on the documents of some Parquet files."""
    texts = list(iter_texts(Source(tuple(parquet_files))))
    tokens = encode_texts(tok, texts, eot_id(tok))
    loss, n = mean_loss(model, eval_windows(tokens, block_size, batch_size, max_batches), device)
    return {"loss": loss, "perplexity": math.exp(loss), "tokens": n, "documents": len(texts)}


@torch.no_grad()
def choice_logprobs(model, tok, context: str, choices: list[str], device) -> list[tuple[float, int]]:
    """(sum of log-probs, token count) of each choice's tokens following the context."""
    block = model.cfg.block_size
    ctx_ids = tok.encode(context, add_special_tokens=False).ids
    out = []
    for choice in choices:
        ch = tok.encode(choice, add_special_tokens=False).ids
        if not ch:
            out.append((float("-inf"), 0))
            continue
        ids = (ctx_ids + ch)[-(block + 1):]
        n_ch = min(len(ch), len(ids) - 1)
        x = torch.tensor(ids[:-1], device=device)[None]
        y = torch.tensor(ids[1:], device=device)
        with autocast_for(device):
            logits = model(x)[0].float()
        lp = F.log_softmax(logits, dim=-1).gather(1, y[:, None]).squeeze(1)
        out.append((lp[-n_ch:].sum().item(), n_ch))
    return out


def score_multiple_choice(model, tok, path: str | Path, device, limit: int = 0) -> dict:
    """Accuracy (raw sum and length-normalised) over a JSONL multiple-choice file; bad lines skipped."""
    n = correct = correct_norm = skipped = 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                ctx, choices, answer = item["context"], list(item["choices"]), int(item["answer"])
                if not choices or not 0 <= answer < len(choices):
                    raise ValueError("answer out of range")
            except (ValueError, KeyError, TypeError) as e:
                log.warning("%s:%d skipped: %s", path, lineno, e)
                skipped += 1
                continue
            scores = choice_logprobs(model, tok, ctx, choices, device)
            correct += int(np.argmax([s for s, _ in scores]) == answer)
            correct_norm += int(np.argmax([s / max(c, 1) for s, c in scores]) == answer)
            n += 1
            if limit and n >= limit:
                break
    return {"questions": n, "accuracy": correct / n if n else float("nan"),
            "accuracy_norm": correct_norm / n if n else float("nan"), "skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--parquet", nargs="*", default=[], help="Parquet files to report loss/perplexity on")
    ap.add_argument("--mc", help="multiple-choice JSONL to score")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-batches", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="score at most this many questions")
    ap.add_argument("--device", default="auto")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    device = pick_device(a.device)
    try:
        model, tok, _ = load_for_inference(a.checkpoint, device)
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result = {}
    if a.parquet:
        result["split"] = split_loss(model, tok, a.parquet, model.cfg.block_size, a.batch_size, device,
                                     a.max_batches)
    if a.mc:
        result["multiple_choice"] = score_multiple_choice(model, tok, a.mc, device, a.limit)
    print(json.dumps(result, indent=2))
    return 0
