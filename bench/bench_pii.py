"""PII stage: recall and speed with and without the candidate pre-check.

Data: the (first ``--limit``) real documents of examples/data/sample.jsonl.zst (licenses, Debian copyright files with
real e-mail addresses, Debian manuals), and a copy in which a third of the documents get 1-3 planted
values each (e-mail, US/UK phone, Luhn-valid card, IPv4/IPv6, checksummed IBAN, SSN) at known offsets,
plus Luhn-invalid card numbers that must stay. Each mode runs the same ``PiiRedact`` stage on the same
Arrow batches, single process (one core); the time is the median of ``--runs`` runs. Both modes repeat
redaction around replaced spans (the stage's ``passes``); only the first pass differs: candidate windows
with the pre-check, the whole text (in chunks) without it.

Run: ``python bench/bench_pii.py [--runs 3] [--copies 1] [--limit N] [--out bench/results/pii.md]``
(uses the project's venv: presidio, spaCy, pyarrow, zstandard).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import pyarrow as pa
import zstandard

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curator.stages.pii import PiiRedact  # noqa: E402

SAMPLE = REPO / "examples" / "data" / "sample.jsonl.zst"


def load_docs() -> list[str]:
    with open(SAMPLE, "rb") as fh:
        reader = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(fh), encoding="utf-8")
        return [json.loads(line)["text"] for line in reader if line.strip()]


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def make_value(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE", "US_SSN"])
    if kind == "EMAIL_ADDRESS":
        user = rng.choice(["ann", "bob.smith", "j_doe", "maria-l", "x"]) + str(rng.randint(1, 999))
        return kind, f"{user}@{rng.choice(['example.com', 'mail.example.org', 'uni.example.ac.uk'])}"
    if kind == "PHONE_NUMBER":
        area = rng.choice([212, 415, 617, 305, 206])
        return kind, rng.choice([f"({area}) 555-01{rng.randint(10, 99)}", f"{area}-555-01{rng.randint(10, 99)}",
                                 f"+44 20 7946 0{rng.randint(100, 999)}"])
    if kind == "CREDIT_CARD":
        body = "4" + "".join(str(rng.randint(0, 9)) for _ in range(14))
        num = body + luhn_digit(body)
        return kind, rng.choice([num, " ".join(num[i:i + 4] for i in range(0, 16, 4))])
    if kind == "IP_ADDRESS":
        if rng.random() < 0.7:
            return kind, ".".join(str(x) for x in (rng.randint(11, 223), rng.randint(0, 255),
                                                   rng.randint(0, 255), rng.randint(1, 254)))
        return kind, f"2001:db8:{rng.randint(1, 0xffff):x}::{rng.randint(1, 0xffff):x}"
    if kind == "IBAN_CODE":
        bban = "".join(str(rng.randint(0, 9)) for _ in range(18))
        check = 98 - int(bban + "131400") % 97  # D=13 E=14, then "00"
        iban = f"DE{check:02d}{bban}"
        return kind, rng.choice([iban, " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))])
    return kind, f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"


def bad_card(rng: random.Random) -> str:
    body = "4" + "".join(str(rng.randint(0, 9)) for _ in range(14))
    return body + str((int(luhn_digit(body)) + 1) % 10)


def plant(docs: list[str], seed: int = 0):
    """Docs with planted values; returns (docs, planted: list of (doc, entity, start, end), bad cards)."""
    rng = random.Random(seed)
    out, planted, bad = [], [], []
    for i, text in enumerate(docs):
        if rng.random() > 1 / 3:
            out.append(text)
            continue
        cuts = sorted(rng.sample(range(len(text) + 1), k=min(rng.randint(1, 3), len(text) + 1)))
        pieces, pos, built = [], 0, 0
        for cut in cuts:
            while cut < len(text) and not text[cut].isspace():
                cut += 1
            pieces.append(text[pos:cut])
            built += cut - pos
            if rng.random() < 0.15:
                value, entity = bad_card(rng), None
            else:
                entity, value = make_value(rng)
            word = rng.choice(["contact", "number", "see", "card", "id", "at"])
            insert = f" {word} {value} "
            start = built + len(word) + 2
            (planted.append((i, entity, start, start + len(value))) if entity
             else bad.append((i, start, start + len(value))))
            pieces.append(insert)
            built += len(insert)
            pos = cut
        pieces.append(text[pos:])
        out.append("".join(pieces))
    return out, planted, bad


def time_modes(stages: list[PiiRedact], docs: list[str], runs: int, batch: int = 64) -> list[float]:
    """Median seconds per stage over ``runs`` passes, the stages interleaved so load noise hits both."""
    tables = [pa.table({"text": docs[i:i + batch]}) for i in range(0, len(docs), batch)]
    for stage in stages:  # warm-up: lazy imports, phonenumbers metadata, regex caches
        stage(tables[0])
    times: list[list[float]] = [[] for _ in stages]
    cpu: list[list[float]] = [[] for _ in stages]
    for _ in range(runs):
        for k, stage in enumerate(stages):
            t0, c0 = time.perf_counter(), time.process_time()
            for t in tables:
                stage(t)
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return [statistics.median(t) for t in times] + [statistics.median(c) for c in cpu]


def detections(stage: PiiRedact, docs: list[str]):
    return [{(r.entity_type, r.start, r.end) for r in stage.analyze(d)} for d in docs]


def recall(found, planted, bad):
    hit = sum(any(e == ent and s <= ps and t >= pe for e, s, t in found[i]) for i, ent, ps, pe in planted)
    exact = sum((ent, ps, pe) in found[i] for i, ent, ps, pe in planted)
    leaked_bad = sum(any(e == "CREDIT_CARD" and s <= bs and t >= be for e, s, t in found[i]) for i, bs, be in bad)
    return hit, exact, leaked_bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--copies", type=int, default=1, help="repeat the corpus this many times for timing")
    ap.add_argument("--limit", type=int, default=None, help="use the first N documents only")
    ap.add_argument("--out", default=None, help="write the Markdown section here")
    args = ap.parse_args()

    real = load_docs()[: args.limit]
    planted_docs, planted, bad = plant(real)
    with_check, without = PiiRedact(), PiiRedact(precheck=False)

    lines = []
    rows = []
    for name, docs in (("real (sample.jsonl.zst)", real), ("planted", planted_docs)):
        timed = docs * args.copies
        chars = sum(len(d) for d in timed)
        t_on, t_off, c_on, c_off = time_modes([with_check, without], timed, args.runs)
        f_on, f_off = detections(with_check, docs), detections(without, docs)
        same = sum(a == b for a, b in zip(f_on, f_off, strict=True))
        skipped = sum(not with_check.spans(d) for d in docs)
        analyzed = sum(e - s for d in docs for s, e in with_check.spans(d))
        rows.append((name, len(timed), chars, t_on, t_off, c_on, c_off, same, len(docs), skipped, analyzed,
                     sum(len(d) for d in docs), sum(map(len, f_on)), sum(map(len, f_off))))
        if name == "planted":
            rec_on, rec_off = recall(f_on, planted, bad), recall(f_off, planted, bad)
            missed = [f"{ent} `{docs[i][s:e]}`" for i, ent, s, e in planted
                      if not any(x == ent and a <= s and b >= e for x, a, b in f_off[i])]

    lines.append("## PII redaction (`pii`): candidate pre-check on vs off")
    lines.append("")
    lines.append(f"Command: `python bench/bench_pii.py --runs {args.runs} --copies {args.copies}"
                 f"{f' --limit {args.limit}' if args.limit else ''}`. Machine: "
                 f"shared 2-core VM ({platform.machine()}, {os.cpu_count()} CPUs visible, other jobs running), "
                 f"one process, Python {platform.python_version()}. Data: the {len(real)} documents of "
                 "`examples/data/sample.jsonl.zst` (real licenses, Debian copyright files with real e-mail "
                 "addresses, manuals) and a copy with planted values (see the script). Time: median of "
                 f"{args.runs} runs of the stage over 64-document Arrow batches, after a warm-up batch, the "
                 "two modes interleaved.")
    lines.append("")
    lines.append("| corpus | docs | chars | pre-check docs/s | no pre-check docs/s | speed-up (wall) | "
                 "CPU s pre-check / none | speed-up (CPU) | docs with "
                 "identical detections | docs skipped (no candidate) | chars analyzed with pre-check | "
                 "detections on / off |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, n, chars, t_on, t_off, c_on, c_off, same, nd, skipped, analyzed, nchars, d_on, d_off in rows:
        lines.append(f"| {name} | {n} | {chars:,} | {n / t_on:.1f} | {n / t_off:.1f} | {t_off / t_on:.2f}x | "
                     f"{c_on:.1f} / {c_off:.1f} | {c_off / c_on:.2f}x | "
                     f"{same}/{nd} | {skipped}/{nd} | {analyzed / nchars:.0%} | {d_on} / {d_off} |")
    lines.append("")
    lines.append(f"Recall on {len(planted)} planted values (a detection of the same type covering the span): "
                 f"pre-check {rec_on[0]}/{len(planted)} ({rec_on[1]} exact spans), no pre-check "
                 f"{rec_off[0]}/{len(planted)} ({rec_off[1]} exact spans). Luhn-invalid card numbers "
                 f"planted: {len(bad)}, detected as CREDIT_CARD: {rec_on[2]} (pre-check) / {rec_off[2]} "
                 f"(no pre-check). Missed by presidio in both modes: {', '.join(missed) or 'none'}.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
