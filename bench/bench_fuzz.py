"""Long fuzz run of every reader (the targets of tests/readers/fuzz_targets.py): executions and findings.

Run: ``python bench/bench_fuzz.py --examples 5000`` (per target). A finding is printed with the failing
input (hypothesis shrinks it) and the run exits non-zero.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "readers")]


def _runner(strategy, check, examples, given, settings, health):
    """A hypothesis test of one target that counts its executions."""
    from fuzz_targets import run_case

    count = [0]

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(health))
    @given(strategy)
    def run(case):
        count[0] += 1
        run_case(check, case)

    return run, count


def main() -> int:
    from fuzz_targets import TARGETS
    from hypothesis import HealthCheck, given, settings

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--examples", type=int, default=2000)
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "fuzz.md"))
    args = p.parse_args()
    rows, failed = [], False
    for name, (strategy, check) in sorted(TARGETS.items()):
        run, count = _runner(strategy, check, args.examples, given, settings, HealthCheck)

        t0 = time.perf_counter()
        try:
            run()
            outcome = "no finding"
        except Exception as exc:  # noqa: BLE001 - report the finding
            outcome, failed = f"FINDING: {type(exc).__name__}: {exc}", True
        rows.append((name, count[0], time.perf_counter() - t0, outcome))
        print(rows[-1], flush=True)
    lines = [f"# Reader fuzzing (`python bench/bench_fuzz.py --examples {args.examples}`)", "",
             "| target | executions | seconds | outcome |", "| --- | ---: | ---: | --- |"]
    lines += [f"| {n} | {c:,} | {s:.0f} | {o} |" for n, c, s, o in rows]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
