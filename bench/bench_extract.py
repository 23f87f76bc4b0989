"""Extraction settings of ``html_to_text``: docs/s per core and agreement with standard trafilatura.

For each setting, one process (pin it to one core with ``taskset -c 0``):

- ``html_to_text`` alone over every HTML page of the crawl (Arrow batches of 256, CPU seconds, median of
  ``--runs`` runs with the settings alternating);
- agreement with standard trafilatura (``extractor: trafilatura``, ``strip_scripts: false``: the stage as it
  was): token-level F1 of each page's text (whitespace tokens, multiset overlap; a page one side drops has
  F1 0 unless both drop it), the share of pages with identical text, pages kept;
- the FineWeb-like recipe after it (langid en >= 0.65, gopher_repetition, gopher_quality, c4_quality with
  FineWeb's setting, fineweb_quality, pii): documents kept, the overlap of the kept set with the set the
  standard setting keeps (by id), and the whole recipe's docs/s per core.

Settings: ``standard``, ``standard+strip`` (the default: script/style cut before parsing), ``fast``,
``cascade`` (standard behind the Resiliparse + language + length pre-check), ``cascade+fast``,
``resiliparse``.

The crawl: a real WARC made on this machine from the HTML documentation Debian installs (many languages:
debian-handbook in 26, the Debian FAQ, maint-guide and debian-reference translations; English Python,
PostgreSQL, SQLite and Git manuals):

    mkdir -p /work/data/crawl && cd /work/data/crawl
    python3 -m http.server 8765 --bind 127.0.0.1 --directory /usr/share/doc &
    wget --recursive --level=inf --no-parent -e robots=off --no-verbose --delete-after --no-directories \\
        --accept-regex '(/|\\.html?)$' --reject-regex '\\?' --warc-file=/work/data/crawl/usr-share-doc \\
        http://127.0.0.1:8765/
    kill %1

(apt-get install wget if it is missing; more pages: apt-get install python3-doc debian-reference
debian-handbook postgresql-doc sqlite3-doc git-doc.) Then, in the project's venv:

    taskset -c 0 python bench/bench_extract.py /work/data/crawl/usr-share-doc.warc.gz --sample 3000 --runs 2 \\
        --out bench/results/extract.md
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curator.readers.warc import read_warc  # noqa: E402
from curator.schema import DROP_REASON  # noqa: E402
from curator.stages.c4 import C4Quality  # noqa: E402
from curator.stages.extract import HtmlToText  # noqa: E402
from curator.stages.fineweb import FineWebQuality  # noqa: E402
from curator.stages.gopher import GopherQuality, GopherRepetition  # noqa: E402
from curator.stages.langid import LangId  # noqa: E402
from curator.stages.pii import PiiRedact  # noqa: E402

BATCH = 256
SETTINGS: dict[str, dict] = {
    "standard": {"strip_scripts": False},
    "standard+strip": {},
    "fast": {"fast": True},
    "cascade": {"cascade": True},
    "cascade+fast": {"cascade": True, "fast": True},
    "resiliparse": {"extractor": "resiliparse"},
}


NOTES = """Reading the numbers: `standard+strip` must show identical text on every page (it only removes what
trafilatura deletes anyway). `fast` skips trafilatura's fallback extractors: on pages where its main
heuristic finds little (many Debian handbook pages) the text comes out empty or different. The cascade
never changes the text of a page it passes (it runs the same trafilatura), so its differences are only in
which documents the recipe keeps: a page the cheap pass drops that the standard recipe keeps is "lost"
(typically a non-English page where trafilatura picked an English fragment, such as a license footer).
Its gain depends on the crawl: pages it drops early save their whole trafilatura time, while every page
pays the Resiliparse pass and one fastText prediction (a few ms)."""


def token_f1(a: str | None, b: str | None) -> float:
    """Token-level F1 of two texts (whitespace tokens as multisets); both empty: 1.0."""
    ta, tb = collections.Counter((a or "").split()), collections.Counter((b or "").split())
    if not ta and not tb:
        return 1.0
    common = sum((ta & tb).values())
    if not common:
        return 0.0
    p, r = common / sum(ta.values()), common / sum(tb.values())
    return 2 * p * r / (p + r)


def batches(table: pa.Table) -> list[pa.Table]:
    return [table.slice(i, BATCH) for i in range(0, table.num_rows, BATCH)]


def run_stage(stage, parts: list[pa.Table]) -> pa.Table:
    return pa.concat_tables([stage(t) for t in parts], promote_options="default")


def live(table: pa.Table) -> pa.Table:
    if DROP_REASON not in table.column_names:
        return table
    return table.filter(pc.is_null(table.column(DROP_REASON))).drop_columns([DROP_REASON])


def recipe_stages() -> list:
    return [LangId(languages=["en"], threshold=0.65), GopherRepetition(), GopherQuality(),
            C4Quality(filter_no_terminal_punct=False), FineWebQuality(), PiiRedact()]


def run_recipe(extracted: pa.Table, stages: list) -> tuple[pa.Table, float]:
    """(documents the recipe keeps, CPU seconds of the stages after extraction)."""
    table = live(extracted)
    c0 = time.process_time()
    for stage in stages:
        table = live(run_stage(stage, batches(table)))
    return table, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("warc", nargs="+", help="WARC file(s) of the crawl")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="use the first N pages")
    ap.add_argument("--sample", type=int, default=None, help="use N pages drawn at random (seeded), in crawl order")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    tables = [t for path in args.warc for t in read_warc(path, source="crawl", batch_size=BATCH)]
    pages = pa.concat_tables(tables)
    if args.limit:
        pages = pages.slice(0, args.limit)
    if args.sample and args.sample < pages.num_rows:
        pick = sorted(random.Random(args.seed).sample(range(pages.num_rows), args.sample))
        pages = pages.take(pa.array(pick))
    parts = batches(pages)
    stages = {name: HtmlToText(**SETTINGS[name]) for name in ["standard"] + [s for s in args.settings
                                                                             if s != "standard"]}
    for stage in stages.values():  # warm-up: lazy imports, the language model
        stage(parts[0].slice(0, 8))

    spent: dict[str, list[float]] = {name: [] for name in stages}
    outputs: dict[str, pa.Table] = {}
    for _ in range(args.runs):
        for name, stage in stages.items():
            c0 = time.process_time()
            outputs[name] = run_stage(stage, parts)
            spent[name].append(time.process_time() - c0)
    extract_s = {name: statistics.median(v) for name, v in spent.items()}

    ref = outputs["standard"]
    ref_text = [None if r else t for t, r in zip(ref.column("text").to_pylist(),
                                                 ref.column(DROP_REASON).to_pylist(), strict=True)]
    ref_kept, ref_recipe_s = run_recipe(ref, recipe_stages())
    ref_ids = set(ref_kept.column("id").to_pylist())
    kept_url = dict(zip(pages.column("id").to_pylist(), pages.column("url").to_pylist(), strict=True))
    lost_urls: dict[str, list[str]] = {}
    rows = []
    for name, out in outputs.items():
        reasons = out.column(DROP_REASON).to_pylist()
        text = [None if r else t for t, r in zip(out.column("text").to_pylist(), reasons, strict=True)]
        f1 = [token_f1(a, b) for a, b in zip(text, ref_text, strict=True) if a is not None or b is not None]
        f1_both = [token_f1(a, b) for a, b in zip(text, ref_text, strict=True) if a is not None and b is not None]
        same = sum(a == b for a, b in zip(text, ref_text, strict=True))
        kept, recipe_s = (ref_kept, ref_recipe_s) if name == "standard" else run_recipe(out, recipe_stages())
        ids = set(kept.column("id").to_pylist())
        drops = collections.Counter(r for r in reasons if r)
        lost_urls[name] = sorted(kept_url[i] for i in ref_ids - ids)[:8]
        mean = lambda xs: statistics.mean(xs) if xs else 1.0  # noqa: E731
        rows.append((name, sum(t is not None for t in text), mean(f1), mean(f1_both),
                     sum(x >= 0.95 for x in f1) / max(1, len(f1)), same, len(ids), len(ids & ref_ids),
                     len(ref_ids - ids), len(ids - ref_ids), extract_s[name], recipe_s, dict(drops)))

    n, chars = pages.num_rows, sum(len(t or "") for t in pages.column("text").to_pylist())
    lines = ["## Extraction settings (`html_to_text`, bench/bench_extract.py)", ""]
    lines.append(f"Command: `{' '.join(sys.argv)}`. Machine: {os.cpu_count()} CPUs visible ({platform.machine()}), "
                 f"affinity {sorted(os.sched_getaffinity(0))}, Python {platform.python_version()}, load average "
                 f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}. Crawl: {n} HTML pages, {chars:,} characters. "
                 f"CPU seconds, median of {args.runs} runs, settings alternating. F1: token F1 against `standard` "
                 "over pages either side keeps; recipe: langid en >= 0.65, Gopher repetition + quality, C4 "
                 "(FineWeb's setting), FineWeb, pii.")
    lines += ["", "| setting | extract docs/s | vs standard | pages with text | mean F1 | mean F1 (both keep) | "
              "pages F1 >= 0.95 | identical text | recipe keeps | kept by both | lost | gained | "
              "recipe docs/s (whole) | drop reasons of html_to_text |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    base_s = extract_s["standard"]
    for (name, with_text, f1, f1_both, f1_95, same, kept, both, lost, gained, ext_s, rec_s, drops) in rows:
        lines.append(f"| {name} | {n / ext_s:.1f} | {base_s / ext_s:.2f}x | {with_text} | {f1:.4f} | {f1_both:.4f} | "
                     f"{f1_95:.1%} | "
                     f"{same}/{n} | {kept} | {both} | {lost} | {gained} | {n / (ext_s + rec_s):.1f} | "
                     f"{', '.join(f'{k} {v}' for k, v in sorted(drops.items()))} |")
    lines.append("")
    for name, urls in lost_urls.items():
        if urls:
            lines.append(f"- {name}: documents the standard recipe keeps and this one does not (first 8): "
                         + ", ".join(f"`{u}`" for u in urls))
    lines += ["", NOTES]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
