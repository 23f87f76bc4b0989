"""A deterministic scale corpus with planted duplicates: real text of this machine, at any size.

Paragraph pool: real texts installed here (licenses and copyright files, man pages as plain text, Python
sources), cut into paragraphs, of which only running prose is kept (>= 12 words, >= 90% with a letter,
stop words). A **base** document is 3-12 paragraphs drawn at
random from the pool, each with 15% of its words replaced by other words of the pool (so no two bases
share a paragraph exactly, and bases are not near-duplicates of each other). Then, per base, with fixed probabilities:

- an exact copy (``EXACT_RATE``; the copy differs only in case and whitespace, which exact dedup folds);
- a near-duplicate cluster (``NEAR_RATE``) of 1-5 edited copies: 0.5-1.5% of the words replaced, paragraphs
  shuffled, or a three-word header and footer around the same body (each kept only when its
  Jaccard of word 5-grams with the base is >= 0.8);

At scale 1 there are ``BASES`` bases (about 33k documents). Files of ``DOCS_PER_FILE`` documents alternate
between ``jsonl.zst`` and Parquet. ``clusters.json`` records every planted cluster (generator ids, the
original first), so precision and recall can be scored at every size. Every id is ``x<scale>-<n>``; the
readers keep it in ``meta`` (``id``).

Run: ``python bench/scale_corpus.py --scale 4 --out /work/data/scale`` (writes ``/work/data/scale/x4``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import subprocess
import unicodedata
from pathlib import Path

BASES = 25_000
EXACT_RATE = 0.12
NEAR_RATE = 0.12
DOCS_PER_FILE = 10_000
_SPACE = re.compile(r"[ \t]+")


def _man_text(path: Path) -> str:
    try:
        raw = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
    except (OSError, EOFError):
        return ""
    lines = [ln for ln in raw.splitlines() if not ln.startswith((".", "'\\\""))]
    return "\n".join(re.sub(r"\\f[BIRP]|\\-|\\\(..|\\&|\\e", "", ln) for ln in lines)


def paragraph_pool(limit_files: int = 20_000) -> list[str]:
    """Real paragraphs of at least 8 words from this machine's installed text, in a fixed order."""
    sources: list[tuple[str, str]] = []
    for p in sorted(Path("/usr/share/common-licenses").glob("*")):
        sources.append((str(p), p.read_text("utf-8", "replace")))
    for p in sorted(Path("/usr/share/doc").glob("*/copyright"))[:limit_files]:
        sources.append((str(p), p.read_text("utf-8", "replace")))
    for p in sorted(Path("/usr/share/man/man1").glob("*.gz"))[:limit_files]:
        sources.append((str(p), _man_text(p)))
    for p in sorted(Path("/usr/lib/python3.11").glob("**/*.py"))[:limit_files]:
        try:  # docstrings and comments hold prose; the filter below keeps only that
            sources.append((str(p), p.read_text("utf-8", "replace")))
        except OSError:
            pass
    seen, pool = set(), []
    for _, text in sources:
        for para in re.split(r"\n\s*\n", text):
            para = _SPACE.sub(" ", para).strip()
            if para not in seen and _prose(para):
                seen.add(para)
                pool.append(para)
    return pool


_STOP = {"the", "be", "to", "of", "and", "that", "have", "with", "is", "a", "in", "for"}


def _prose(para: str) -> bool:
    """Paragraphs of running text (code, option tables and listings are left out), so that the
    recipe's quality rules keep most documents and the dedup stages see most of the corpus."""
    words = para.split()
    if len(words) < 12:
        return False
    alpha = sum(any(c.isalpha() for c in w) for w in words) / len(words)
    return alpha >= 0.9 and sum(w.lower() in _STOP for w in words) >= 3 and para.count("#") < 3


MIN_JACCARD = 0.8


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word n-grams after lowercasing and turning Unicode punctuation and symbols into spaces."""
    chars = [" " if unicodedata.category(c)[0] in "PS" else c for c in text.lower()]
    w = "".join(chars).split()
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)} if len(w) >= n else {tuple(w)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / max(1, len(a | b))


def _variant(para: str, rnd: random.Random, vocab: list[str]) -> str:
    """A pool paragraph with 15% of its words replaced: each base's paragraphs are its own (the pool's
    paragraphs are drawn many times at large scales), so only the planted copies are duplicates."""
    words = para.split(" ")
    for _ in range(max(1, len(words) * 15 // 100)):
        words[rnd.randrange(len(words))] = rnd.choice(vocab)
    return " ".join(words)


def _edit(text: str, rnd: random.Random, vocab: list[str]) -> str:
    kind = rnd.choice(["words", "shuffle", "frame"])
    paras = text.split("\n\n")
    if kind == "shuffle" and len(paras) > 2:
        rnd.shuffle(paras)
        return "\n\n".join(paras)
    if kind == "frame":
        head = " ".join(rnd.choice(vocab) for _ in range(3))
        foot = " ".join(rnd.choice(vocab) for _ in range(3))
        return f"{head}\n\n{text}\n\n{foot}"
    words = text.split(" ")
    for _ in range(max(1, int(len(words) * rnd.uniform(0.005, 0.015)))):
        words[rnd.randrange(len(words))] = rnd.choice(vocab)
    return " ".join(words)


CHUNK_BASES = 50_000  # bases generated, shuffled and written together (memory stays bounded)


def generate(scale: int, seed: int = 0):
    """Yield chunks of (id, text) in a fixed order, each chunk shuffled, with its planted clusters."""
    rnd = random.Random(seed)
    pool = paragraph_pool()
    vocab = sorted({w for p in pool[:2000] for w in p.split() if w.isalpha()})
    n = 0
    total = BASES * scale
    for start in range(0, total, CHUNK_BASES):
        docs: list[tuple[str, str]] = []
        clusters: list[list[str]] = []
        for _ in range(min(CHUNK_BASES, total - start)):
            base = "\n\n".join(_variant(rnd.choice(pool), rnd, vocab) for _ in range(rnd.randint(3, 12)))
            members = [f"x{scale}-{n}"]
            n += 1
            docs.append((members[0], base))
            if rnd.random() < EXACT_RATE:
                members.append(f"x{scale}-{n}")
                n += 1
                docs.append((members[-1], "  ".join(base.upper().split(" ")) if rnd.random() < 0.5 else base))
            if rnd.random() < NEAR_RATE:
                grams = shingles(base)
                for _ in range(rnd.randint(1, 5)):
                    near = next((t for t in (_edit(base, rnd, vocab) for _ in range(5))
                                 if jaccard(grams, shingles(t)) >= MIN_JACCARD), None)
                    if near is None:
                        continue
                    members.append(f"x{scale}-{n}")
                    n += 1
                    docs.append((members[-1], near))
            if len(members) > 1:
                clusters.append(members)
        rnd.shuffle(docs)  # members of a cluster land in different files
        yield docs, clusters


def write(scale: int, out: Path, seed: int = 0) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    folder = out / f"x{scale}"
    folder.mkdir(parents=True, exist_ok=True)
    files, clusters, n_docs, chars = [], [], 0, 0
    for docs, planted in generate(scale, seed):
        clusters += planted
        n_docs += len(docs)
        chars += sum(len(t) for _, t in docs)
        for start in range(0, len(docs), DOCS_PER_FILE):
            part, f = docs[start:start + DOCS_PER_FILE], len(files)
            if f % 2 == 0:
                path = folder / f"part-{f:04d}.jsonl.zst"
                raw = "".join(json.dumps({"id": i, "text": t, "meta": {"pile_set_name": "scale"}}) + "\n"
                              for i, t in part).encode()
                path.write_bytes(zstandard.ZstdCompressor(level=3).compress(raw))
            else:
                path = folder / f"part-{f:04d}.parquet"
                pq.write_table(pa.table({"id": [i for i, _ in part], "text": [t for _, t in part]}), path)
            files.append(path.name)
    meta = {"scale": scale, "seed": seed, "docs": n_docs, "chars": chars, "clusters": len(clusters),
            "planted_duplicates": sum(len(c) - 1 for c in clusters), "files": files}
    (folder / "clusters.json").write_text(json.dumps(clusters))
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--scale", type=int, nargs="+", default=[1])
    p.add_argument("--out", default="/work/data/scale")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bases", type=int, default=None, help="base documents per unit of scale (smoke runs)")
    args = p.parse_args()
    if args.bases:
        globals()["BASES"] = args.bases
    for scale in args.scale:
        print(json.dumps(write(scale, Path(args.out), args.seed)))
    subprocess.run(["du", "-sh", *[str(Path(args.out) / f"x{s}") for s in args.scale]])


if __name__ == "__main__":
    main()
