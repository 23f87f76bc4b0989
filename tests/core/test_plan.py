"""Phases and keys: a change invalidates exactly what it touches."""

from __future__ import annotations

from curator.plan import Unit, build_plan
from curator.spec import validate_spec


def _plan(stages: list[dict], **extra):
    spec = validate_spec({"name": "p", "inputs": [{"path": "in/*.jsonl"}], "stages": stages,
                          "output": {"path": "out"}, **extra}, check_inputs=False)
    units = [Unit(0, "/d/a.jsonl", 0, {"size": 10, "mtime": "1"}), Unit(1, "/d/b.jsonl", 0, {"size": 20, "mtime": "2"})]
    return build_plan(spec, units)


def _shape(plan) -> list[tuple[list[str], list[str]]]:
    return [([s.name for s in ph.maps], [s.name for s in ph.globals]) for ph in plan.phases]


def test_phases_are_maps_then_the_global_stages_after_them():
    assert _shape(_plan([])) == [([], [])]
    assert _shape(_plan([{"stage": "normalize"}, {"stage": "min_length"}])) == [(["normalize", "min_length"], [])]
    assert _shape(_plan([{"stage": "normalize"}, {"stage": "exact_dedup"}, {"stage": "fuzzy_dedup"},
                         {"stage": "min_length"}, {"stage": "split"}])) == [
        (["normalize"], ["exact_dedup", "fuzzy_dedup"]), (["min_length"], ["split"]), ([], [])]


def test_a_stage_that_repeats_rows_ends_its_phase():
    mix = {"stage": "mix", "weights": {"*": 1.0}}
    assert _shape(_plan([{"stage": "exact_dedup"}, mix, {"stage": "split"}])) == [
        ([], ["exact_dedup", "mix"]), ([], ["split"]), ([], [])]


def test_keys_change_with_what_they_cover_only():
    base = _plan([{"stage": "min_length", "min_chars": 10}, {"stage": "exact_dedup"}])
    a, b = (base.first_key(u) for u in base.units)
    assert a != b
    changed_input = _plan([{"stage": "min_length", "min_chars": 10}, {"stage": "exact_dedup"}])
    changed_input.units[1] = Unit(1, "/d/b.jsonl", 0, {"size": 21, "mtime": "3"})
    assert changed_input.first_key(changed_input.units[0]) == a
    assert changed_input.first_key(changed_input.units[1]) != b
    later = _plan([{"stage": "min_length", "min_chars": 10}, {"stage": "exact_dedup", "lowercase": False}])
    assert [later.first_key(u) for u in later.units] == [a, b]  # a global stage's change leaves phase 0 alone
    g1 = base.global_key([a, b], [], base.phases[0].globals[0])
    g2 = later.global_key([a, b], [], later.phases[0].globals[0])
    assert g1 != g2
    earlier = _plan([{"stage": "min_length", "min_chars": 11}, {"stage": "exact_dedup"}])
    assert earlier.first_key(earlier.units[0]) != a
    output = _plan([{"stage": "min_length", "min_chars": 10}, {"stage": "exact_dedup"}], seed=1)
    assert output.first_key(output.units[0]) != a
