"""Evaluation: held-out loss/perplexity on a Parquet split, and a multiple-choice log-likelihood scorer.

The multiple-choice file is JSONL, one question a line, in any of three shapes:

- ours: ``{"context": "...", "choices": [" a", " b"], "answer": 1}`` (choices carry their own spacing);
- HellaSwag: ``{"ctx": "...", "endings": ["...", ...], "label": "2"}`` (or ``ctx_a`` + ``ctx_b``);
- ARC: ``{"question": {"stem": "...", "choices": [{"text": "...", "label": "A"}, ...]},
  "answerKey": "A"}`` (AI2's files), or ``{"question": "...", "choices": {"text": [...], "label": [...]},
  "answerKey": "A"}`` (the Hugging Face rows). The context is ``Question: <q>\\nAnswer:``.

For the HellaSwag and ARC shapes a space joins context and choice, as lm-evaluation-harness does. Each
choice is scored by the sum of the log-probabilities of its tokens after the context (and, reported
too, that sum divided by the choice's token count); the prediction is the best-scoring choice. A line
that fits no shape is skipped and counted. An encoder-decoder scores the choice as the filling of a
sentinel appended to the context.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trainer.checkpoint import load_for_inference
from trainer.data import Source, encode_texts, eval_windows, iter_texts
from trainer.device import autocast_for, pick_device
from trainer.tokenizer import eot_id

log = logging.getLogger(__name__)


@torch.no_grad()
def mean_loss(model: torch.nn.Module, batches: Iterable[tuple[np.ndarray, ...]],
              device: torch.device, dtype: str = "auto") -> tuple[float, int]:
    """Target-token-weighted mean cross-entropy over batches (the last array holds the targets).

    Under torch.distributed the sums are all-reduced, so every rank gets the global mean.
    """
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)
    for batch in batches:
        ts = [torch.from_numpy(a).to(device) for a in batch]
        with autocast_for(device, dtype):
            loss = model(*ts)
        n = (ts[-1] >= 0).sum()
        total[0] += loss.double() * n
        total[1] += n
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(total)
    model.train(was_training)
    n = int(total[1].item())
    return (total[0].item() / n if n else float("nan")), n


def split_loss(model, tok, parquet_files: list[str], block_size: int, batch_size: int, device,
               max_batches: int = 0, task: dict | None = None) -> dict:
    """Loss and perplexity of the model on the documents of some Parquet files.

    task: the checkpoint's task spec; span corruption (an encoder-decoder) is scored on its own examples.
    """
    texts = list(iter_texts(Source(tuple(parquet_files))))
    tokens = encode_texts(tok, texts, eot_id(tok))
    if task is not None and task.get("kind") == "span":
        from trainer.span import SpanTask

        st = SpanTask(tokens, tokens, task["window"], 0, task["sentinel0"], task["eot"], task["start"],
                      task["noise_density"], task["mean_span"])
        batches = st.eval_batches(batch_size, max_batches)
    else:
        batches = eval_windows(tokens, block_size, batch_size, max_batches)
    loss, n = mean_loss(model, batches, device)
    return {"loss": loss, "perplexity": math.exp(loss), "tokens": n, "documents": len(texts),
            "bytes": sum(len(t.encode("utf-8")) for t in texts)}


def parse_item(item: dict) -> tuple[str, list[str], int, str]:
    """(context, choices, answer index, shape name) of one multiple-choice line; ValueError if none fits."""
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    if "context" in item and "choices" in item:
        ctx, choices, answer, shape = item["context"], list(item["choices"]), int(item["answer"]), "ours"
    elif "endings" in item:
        ctx = item["ctx"] if "ctx" in item else f"{item['ctx_a']} {item['ctx_b']}".strip()
        choices, answer, shape = [" " + e.lstrip() for e in item["endings"]], int(item["label"]), "hellaswag"
    elif "question" in item and "answerKey" in item:
        q = item["question"]
        if isinstance(q, dict):  # AI2's own files
            stem, texts = q["stem"], [c["text"] for c in q["choices"]]
            labels = [str(c["label"]) for c in q["choices"]]
        else:  # the Hugging Face rows
            stem, texts = q, list(item["choices"]["text"])
            labels = [str(x) for x in item["choices"]["label"]]
        key = str(item["answerKey"])
        if key not in labels:
            raise ValueError(f"answerKey {key!r} is not one of the labels {labels}")
        ctx, choices, answer, shape = f"Question: {stem}\nAnswer:", [" " + t for t in texts], labels.index(key), "arc"
    else:
        raise ValueError("fits none of the shapes (context/choices/answer, HellaSwag, ARC)")
    if not isinstance(ctx, str) or not choices or not all(isinstance(c, str) for c in choices):
        raise ValueError("context and choices must be text")
    if not 0 <= answer < len(choices):
        raise ValueError(f"answer {answer} out of range for {len(choices)} choices")
    return ctx, choices, answer, shape


def _logprob_rows(model, x: list[int], y: list[int], device, tgt_in: list[int] | None = None) -> torch.Tensor:
    """Log-probabilities of the tokens y, position by position (a GPT on x, or an encoder-decoder)."""
    yt = torch.tensor(y, device=device)
    with autocast_for(device):
        if tgt_in is None:
            logits = model(torch.tensor(x, device=device)[None])[0].float()
        else:
            logits = model(torch.tensor(x, device=device)[None], torch.tensor(tgt_in, device=device)[None])[0]
            logits = logits.float()
    return F.log_softmax(logits, dim=-1).gather(1, yt[:, None]).squeeze(1)


@torch.no_grad()
def choice_logprobs(model, tok, context: str, choices: list[str], device,
                    task: dict | None = None) -> list[tuple[float, int]]:
    """(sum of log-probs, token count) of each choice's tokens following the context."""
    ctx_ids = tok.encode(context, add_special_tokens=False).ids
    out = []
    for choice in choices:
        ch = tok.encode(choice, add_special_tokens=False).ids
        if not ch:
            out.append((float("-inf"), 0))
            continue
        if task is not None and task.get("kind") == "span":  # fill one sentinel after the context
            c = model.cfg
            s0 = task["sentinel0"]
            src = (ctx_ids[-(c.src_len - 1):] if c.src_len > 1 else []) + [s0]
            ch = ch[: c.tgt_len - 1]
            lp = _logprob_rows(model, src, [s0] + ch, device, tgt_in=[task["start"], s0] + ch[:-1])
            out.append((lp[1:].sum().item(), len(ch)))
            continue
        block = model.cfg.block_size
        ids = (ctx_ids + ch)[-(block + 1):]
        n_ch = min(len(ch), len(ids) - 1)
        lp = _logprob_rows(model, ids[:-1], ids[1:], device)
        out.append((lp[-n_ch:].sum().item(), n_ch))
    return out


def score_multiple_choice(model, tok, path: str | Path, device, limit: int = 0, task: dict | None = None) -> dict:
    """Accuracy (raw sum and length-normalised) over a JSONL multiple-choice file; bad lines skipped.

    Accuracies are None when no question could be scored.
    """
    n = correct = correct_norm = skipped = 0
    shapes: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                ctx, choices, answer, shape = parse_item(json.loads(line))
            except (ValueError, KeyError, TypeError) as e:
                log.warning("%s:%d skipped: %s", path, lineno, e)
                skipped += 1
                continue
            scores = choice_logprobs(model, tok, ctx, choices, device, task)
            correct += int(np.argmax([s for s, _ in scores]) == answer)
            correct_norm += int(np.argmax([s / max(c, 1) for s, c in scores]) == answer)
            shapes[shape] = shapes.get(shape, 0) + 1
            n += 1
            if limit and n >= limit:
                break
    return {"questions": n, "accuracy": correct / n if n else None,
            "accuracy_norm": correct_norm / n if n else None, "skipped": skipped, "shapes": shapes}


def _finite(obj):
    """obj with NaN / infinity replaced by None, so it prints as strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="a trainer checkpoint (ckpt.pt)")
    ap.add_argument("--parquet", nargs="*", default=[], help="Parquet files to report loss/perplexity on")
    ap.add_argument("--mc", help="multiple-choice JSONL to score (our, HellaSwag or ARC shape)")
    ap.add_argument("--batch-size", type=int, default=8, help="windows per forward pass for --parquet")
    ap.add_argument("--max-batches", type=int, default=0, help="at most this many batches (0: all)")
    ap.add_argument("--limit", type=int, default=0, help="score at most this many questions (0: all)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    device = pick_device(a.device)
    try:
        model, tok, ckpt = load_for_inference(a.checkpoint, device)
        result = {}
        task = ckpt.get("task")
        if a.parquet:
            block = task["window"] if task else model.cfg.block_size
            result["split"] = split_loss(model, tok, a.parquet, block, a.batch_size, device, a.max_batches, task)
        if a.mc:
            result["multiple_choice"] = score_multiple_choice(model, tok, a.mc, device, a.limit, task)
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(_finite(result), indent=2, allow_nan=False))
    if a.mc and result["multiple_choice"]["questions"] == 0:
        print(f"error: no scorable question in {a.mc} ({result['multiple_choice']['skipped']} lines skipped)",
              file=sys.stderr)
        return 1
    return 0
