"""A bounded fuzz run of every reader in CI (bench/bench_fuzz.py runs the same targets much longer)."""

from __future__ import annotations

import pytest
from fuzz_targets import TARGETS, run_case  # tests/readers is on sys.path under pytest
from hypothesis import HealthCheck, given, settings


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_readers_never_raise_on_damaged_input(name):
    strategy, check = TARGETS[name]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(strategy)
    def run(case):
        run_case(check, case)

    run()
