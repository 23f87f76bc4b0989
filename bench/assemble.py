"""Assemble BENCHMARKS.md from the per-benchmark sections each bench script writes to bench/results/*.md.

Run: python bench/assemble.py
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["readers", "stages", "pii", "dedup", "dataset", "api", "trainer", "multigpu"]
HEADER = """# Benchmarks

Each section below was written by the script named in it (`bench/`), with the command, the machine, the
data and the peer measured in the same run. The CPU figures come from a shared 2-core VM with other jobs
running at the same time: read medians and ratios, not single absolute numbers. GPU figures come from the
`device` machines named in their sections.
"""


def main() -> None:
    results = ROOT / "bench" / "results"
    names = [n for n in ORDER if (results / f"{n}.md").exists()]
    names += sorted(p.stem for p in results.glob("*.md") if p.stem not in ORDER)
    parts = [HEADER] + [(results / f"{n}.md").read_text().strip() + "\n" for n in names]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(parts))
    print(f"BENCHMARKS.md: {', '.join(names)}")


if __name__ == "__main__":
    main()
