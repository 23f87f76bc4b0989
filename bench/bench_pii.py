"""PII stage: docs/s per core and per-type precision/recall, fast engine vs presidio vs datatrove's PIIFormatter.

Data: real documents (``--docs`` globs of text files, plain or ``.gz``; default: the documents of
examples/data/sample.jsonl.zst) and the labelled copy :func:`curator.pii.evaluate.plant` makes of them
(values of every type planted at known spans, decoys that must stay; seeded). Systems, one process:

- ``fast``: our ``pii`` stage with its default engine (Hyperscan locator; default entities), and the same
  engine with the ``re2`` and ``python`` matchers (its detections must be identical);
- ``presidio``: our ``pii`` stage with ``engine: presidio`` (blank spaCy pipeline, candidate pre-check),
  on the first ``--presidio-docs`` documents (it is slow);
- ``datatrove``: ``PIIFormatter`` (two regexes: e-mail and public IPv4), if datatrove imports.

Speed: every system over the same documents (the presidio subset, so the ratios compare like with like),
Arrow batches of 64 for our stage, ``PIIFormatter.format`` per document for datatrove; CPU seconds of
this process, median of ``--runs`` runs, the systems alternating; engine construction (Hyperscan
compile, presidio + spaCy load) is timed separately. Quality: :func:`curator.pii.evaluate.score` on the
planted copy, every type each system knows (the fast engine with all its types and ``keep_domains:
example.com/.org/.net``; presidio with its six defaults + URL; datatrove e-mail and IPv4, scored with
``only_remove_public_ips=False`` since the set plants private addresses too). example.com addresses are
decoys only for the fast engine (the others cannot be told to keep a domain).

Setup (datatrove in its own venv, not a project dependency):

    python3.11 -m venv /work/venv-bench-pii
    /work/venv-bench-pii/bin/pip install datatrove pyarrow numpy "pydantic>=2.7" pyyaml zstandard regex \\
        tldextract presidio-analyzer presidio-anonymizer spacy hyperscan google-re2 phonenumbers fsspec orjson

Run (one core):

    taskset -c 0 /work/venv-bench-pii/bin/python bench/bench_pii.py --runs 3 \\
        --docs '/usr/share/common-licenses/*' '/usr/share/doc/*/copyright' '/usr/share/doc/*/README*' \\
        --limit 2000 --presidio-docs 200 --out bench/results/pii.md
"""

from __future__ import annotations

import argparse
import glob
import gzip
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import zstandard

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curator.pii import ALL_ENTITIES, Detection, Options, get_engine  # noqa: E402
from curator.pii.evaluate import EvalSet, TypeScore, plant, score  # noqa: E402
from curator.stages.pii import DEFAULT_ENTITIES as PRESIDIO_ENTITIES  # noqa: E402
from curator.stages.pii import PiiRedact  # noqa: E402

SAMPLE = REPO / "examples" / "data" / "sample.jsonl.zst"
NOTES = """Reading the numbers: the fast engine's cost is one Hyperscan pass over the text (hundreds of MB/s)
plus Python work per candidate (exact pattern, checksum, TLD look-up, ``phonenumbers`` for digit runs of
7+ digits), so documents full of numbers and addresses (the planted copy, copyright files) cost more than
prose. Hyperscan was chosen over RE2 by these figures (same detections, the ``re2`` column); ``python``
(exact patterns over the whole text) is the fallback where neither wheel installs. presidio's precision
suffers from its URL recognizer (file names such as ``setup.py``/``README.md`` match TLDs), IP pattern
(``1.2.3.4`` inside ``1.2.3.4.5``, impossible octets), phone matcher (dotted versions, dates) and SSN rule
(900-999 areas); its card pattern misses Mastercard 2-series and Mir numbers. datatrove's formatter
replaces only e-mail addresses and IPv4 (public ones by default). The evaluation set's decoys and the
fast engine's checks were written together, so its 1.0 figures say that each listed decoy kind is handled,
not that no other false positive exists: the "outside every label" counts are real text, where the
fast engine's finds are real addresses and phone numbers of the copyright files."""
KEEP = ("example.com", "example.org", "example.net")
BATCH = 64


def load_docs(globs: list[str] | None, limit: int | None, min_chars: int = 200) -> list[str]:
    if not globs:
        with open(SAMPLE, "rb") as fh:
            reader = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(fh), encoding="utf-8")
            docs = [json.loads(line)["text"] for line in reader if line.strip()]
        return docs[:limit]
    docs: list[str] = []
    for path in sorted({p for g in globs for p in glob.glob(g, recursive=True)}):
        if not os.path.isfile(path):
            continue
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as fh:
            text = fh.read(2_000_000).decode("utf-8", "replace")
        if len(text) >= min_chars and "\x00" not in text:
            docs.append(text)
        if limit and len(docs) >= limit:
            break
    return docs


# ---------------------------------------------------------------------------------------------- systems
def datatrove_formatter(public_only: bool = True):
    try:
        from datatrove.pipeline.formatters import PIIFormatter
    except ImportError:
        return None
    return PIIFormatter(only_remove_public_ips=public_only)


def datatrove_detect(fmt, text: str) -> list[Detection]:
    """The spans PIIFormatter replaces (its own regexes and IP validator, e-mails first)."""
    out = [Detection(m.start(), m.end(), "EMAIL_ADDRESS") for m in fmt.emails_replacer.regex.finditer(text)]
    for m in fmt.ip_replacer.regex.finditer(text):
        if fmt.ip_replacer.validator(m.group()) and not any(d.start < m.end() and m.start() < d.end for d in out):
            out.append(Detection(m.start(), m.end(), "IP_ADDRESS"))
    return sorted(out)


def time_runs(systems: dict[str, Callable[[], None]], runs: int) -> dict[str, float]:
    """Median CPU seconds of each system over ``runs`` alternating runs (after one warm-up run each)."""
    for fn in systems.values():
        fn()
    spent: dict[str, list[float]] = {k: [] for k in systems}
    for _ in range(runs):
        for name, fn in systems.items():
            c0 = time.process_time()
            fn()
            spent[name].append(time.process_time() - c0)
    return {k: statistics.median(v) for k, v in spent.items()}


def stage_runner(stage: PiiRedact, docs: list[str]) -> Callable[[], None]:
    """Runs the stage over the documents in Arrow batches; the phone-check cache starts empty each run, so
    a repeated run does not profit from the one before."""
    from curator.pii.validate import _phone_variant_ok

    tables = [pa.table({"text": docs[i:i + BATCH]}) for i in range(0, len(docs), BATCH)]

    def run() -> None:
        _phone_variant_ok.cache_clear()
        for t in tables:
            stage(t)
    return run


def timed_build(build: Callable[[], object]) -> tuple[object, float]:
    t0 = time.perf_counter()
    obj = build()
    return obj, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- report
def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def quality_table(rows: dict[str, tuple[dict[str, TypeScore], dict[str, int]]], entities: list[str]) -> list[str]:
    names = list(rows)
    head = "| type | planted | " + " | ".join(f"{n} R | {n} P | {n} exact" for n in names) + " |"
    lines = [head, "| --- | ---: | " + " | ".join("---: | ---: | ---:" for _ in names) + " |"]
    for e in entities:
        planted = max((rows[n][0][e].planted for n in names if e in rows[n][0]), default=0)
        cells = []
        for n in names:
            sc = rows[n][0].get(e)
            cells.append("n/a | n/a | n/a" if sc is None else
                         f"{fmt_ratio(sc.recall)} | {fmt_ratio(sc.precision)} | {sc.exact}")
        lines.append(f"| {e} | {planted} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", nargs="*", help="globs of real text files (default: examples/data/sample.jsonl.zst)")
    ap.add_argument("--limit", type=int, default=None, help="use at most N documents")
    ap.add_argument("--presidio-docs", type=int, default=200, help="documents presidio runs on (speed + quality)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the Markdown section here")
    args = ap.parse_args()

    base = load_docs(args.docs, args.limit)
    evalset = plant(base, seed=args.seed, example_domains=True)
    sub = min(args.presidio_docs, len(base))
    sub_set = EvalSet(evalset.docs[:sub], [lb for lb in evalset.labels if lb.doc < sub])

    fast, t_fast = timed_build(lambda: PiiRedact())
    fast_re2 = PiiRedact(matcher="re2")
    fast_py = PiiRedact(matcher="python")
    presidio, t_presidio = timed_build(lambda: PiiRedact(engine="presidio", max_chars=None))
    dt_default, dt_all = datatrove_formatter(True), datatrove_formatter(False)

    # ---- speed: the same subset for every system, then the fast engine on everything
    speed_rows = []
    for corpus, docs in (("real", base[:sub]), ("planted", evalset.docs[:sub])):
        systems: dict[str, Callable[[], None]] = {
            "fast (hyperscan)": stage_runner(fast, docs), "fast (re2)": stage_runner(fast_re2, docs),
            "fast (python)": stage_runner(fast_py, docs), "presidio": stage_runner(presidio, docs)}
        if dt_default is not None:
            systems["datatrove PIIFormatter"] = lambda docs=docs: [dt_default.format(t) for t in docs] and None
        spent = time_runs(systems, args.runs)
        speed_rows.append((corpus, len(docs), sum(map(len, docs)), spent))
    full_spent = time_runs({"fast": stage_runner(fast, evalset.docs)}, args.runs)["fast"]

    # ---- agreement of the matchers and quality
    all_fast = get_engine(ALL_ENTITIES, Options(keep_domains=KEEP))
    found = {m: [get_engine(ALL_ENTITIES, Options(keep_domains=KEEP), m).detect(d) for d in evalset.docs]
             for m in ("hyperscan", "re2", "python")}
    matchers_equal = found["hyperscan"] == found["re2"] == found["python"]
    fast_q = score(evalset, found[all_fast.matcher_name], ALL_ENTITIES)
    fast_sub_q = score(sub_set, found[all_fast.matcher_name][:sub], ALL_ENTITIES)
    pres_entities = list(PRESIDIO_ENTITIES) + ["URL"]
    pres_engine = PiiRedact(engine="presidio", entities=pres_entities, max_chars=None).engine
    pres_q = score(sub_set, [pres_engine.redact(d)[1] for d in sub_set.docs], pres_entities,
                   skip_decoys=["example_domain"])
    rows = {"fast": fast_sub_q, "presidio": pres_q}
    if dt_all is not None:
        rows["datatrove"] = score(sub_set, [datatrove_detect(dt_all, d) for d in sub_set.docs],
                                  ["EMAIL_ADDRESS", "IP_ADDRESS"], skip_decoys=["example_domain"])

    # ---- report
    n_values = sum(lb.entity is not None for lb in evalset.labels)
    lines = ["## PII redaction (`pii`): fast engine vs presidio vs datatrove (bench/bench_pii.py)", ""]
    lines.append(f"Command: `{' '.join(sys.argv)}`. Machine: {os.cpu_count()} CPUs visible ({platform.machine()}), "
                 f"affinity {sorted(os.sched_getaffinity(0))}, Python {platform.python_version()}, load average "
                 f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}. Documents: {len(base)} "
                 f"({sum(map(len, base)):,} characters); planted copy: {n_values} values, "
                 f"{len(evalset.labels) - n_values} decoys (seed {args.seed}). "
                 f"CPU seconds, median of {args.runs} alternating runs.")
    lines += ["", f"Engine construction (once per worker process): fast {t_fast:.2f} s (Hyperscan compile), "
              f"presidio {t_presidio:.2f} s (spaCy + recognizers).", ""]
    names = list(speed_rows[0][3])
    lines.append("| corpus | docs | chars | " + " | ".join(f"{n} docs/s" for n in names)
                 + " | fast / presidio | fast / datatrove |")
    lines.append("| --- | ---: | ---: | " + " | ".join("---:" for _ in names) + " | ---: | ---: |")
    for corpus, n, chars, spent in speed_rows:
        rate = {k: n / v for k, v in spent.items()}
        dt = rate.get("datatrove PIIFormatter")
        lines.append(f"| {corpus} | {n} | {chars:,} | " + " | ".join(f"{rate[k]:.1f}" for k in names)
                     + f" | {rate['fast (hyperscan)'] / rate['presidio']:.1f}x | "
                     + (f"{rate['fast (hyperscan)'] / dt:.2f}x |" if dt else "- |"))
    lines += ["", f"Fast engine on the whole planted copy ({len(evalset.docs)} documents, "
              f"{sum(map(len, evalset.docs)):,} characters): {len(evalset.docs) / full_spent:.1f} docs/s, "
              f"{sum(map(len, evalset.docs)) / full_spent / 1e6:.1f} MB/s per core. Detections of the three "
              f"matchers identical on every document: {matchers_equal}.", ""]
    lines.append(f"Quality on the first {sub} planted documents (R: recall, P: precision on labelled spans, "
                 "exact: planted values found with exactly their span; n/a: the system has no such type):")
    lines.append("")
    lines += quality_table(rows, list(ALL_ENTITIES))
    lines.append("")
    lines.append("Decoys touched (by kind): " + "; ".join(
        f"{n}: {dict(sorted(q[1].items())) or 'none'}" for n, q in rows.items()) + ".")
    lines.append("Detections outside every label (in the documents' own text, real addresses included): " + "; ".join(
        f"{n}: {sum(s.unlabelled for s in q[0].values())}" for n, q in rows.items()) + ".")
    sc, touched = fast_q
    lines += ["", f"Fast engine on all {len(evalset.docs)} planted documents: " + ", ".join(
        f"{e} R {fmt_ratio(s.recall)} P {fmt_ratio(s.precision)}" for e, s in sc.items())
              + f"; decoys touched: {dict(sorted(touched.items())) or 'none'}."]
    missed = [m for s in sc.values() for m in s.missed][:10]
    if missed:
        lines.append("Missed by the fast engine (first 10): " + "; ".join(missed))
    lines += ["", NOTES]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
