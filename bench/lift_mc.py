"""The curation-lift multiple-choice set: pick a passage's true next sentence among sentences of other pages.

Built from held-out documents (``bench_lift.py`` passes manual pages that neither dataset saw): a
passage of whole sentences (200-700 characters) from one document is the context; the choices are the
sentence that follows it there and three sentences of nearly the same length (within 20% of its
characters, so length alone gives little hint) from three other documents, in a seeded random order.
Output lines have our scorer's shape ``{"context", "choices", "answer"}``; choices carry their leading
space.
"""

from __future__ import annotations

import random
import re

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def paragraphs(text: str) -> list[str]:
    """Paragraphs of a plain-text document, each on one line with single spaces."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        p = " ".join(block.split())
        if p:
            out.append(p)
    return out


def sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENT.split(paragraph) if len(s.strip()) >= 20]


def build_mc(docs: list[str], n_items: int, seed: int = 0, n_choices: int = 4) -> list[dict]:
    """Up to n_items questions from docs (see the module docstring); deterministic for a seed."""
    rng = random.Random(seed)
    per_doc = [[sentences(p) for p in paragraphs(d)] for d in docs]
    pool = [(i, s) for i, paras in enumerate(per_doc) for ss in paras for s in ss if 30 <= len(s) <= 300]
    candidates = []
    for i, paras in enumerate(per_doc):
        for ss in paras:
            for k in range(1, len(ss)):
                ctx = " ".join(ss[:k])
                if 200 <= len(ctx) <= 700 and 30 <= len(ss[k]) <= 300:
                    candidates.append((i, ctx, ss[k]))
    rng.shuffle(candidates)
    items, used = [], set()
    for doc, ctx, true in candidates:
        if len(items) >= n_items:
            break
        if (doc, ctx[:50]) in used:
            continue
        others = [s for j, s in pool if j != doc and len(true) / 1.2 <= len(s) <= 1.2 * len(true) and s != true]
        if len(others) < n_choices - 1:
            continue
        picks = rng.sample(others, n_choices - 1)
        answer = rng.randrange(n_choices)
        choices = picks[:answer] + [true] + picks[answer:]
        items.append({"context": ctx, "choices": [" " + c for c in choices], "answer": answer})
        used.add((doc, ctx[:50]))
    return items


def shortest_choice_accuracy(items: list[dict]) -> float:
    """How often the shortest choice is the answer: the accuracy that length alone would give."""
    hits = [min(range(len(i["choices"])), key=lambda k: len(i["choices"][k])) == i["answer"] for i in items]
    return sum(hits) / max(1, len(hits))
