"""Joining a global stage's decisions back onto the documents by _rowkey."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curator.decisions import DecisionError, join, project
from curator.plan import stage_plans
from curator.spec import validate_spec


def _stage(name: str, **params):
    spec = validate_spec({"inputs": [{"path": "x"}], "stages": [{"stage": name, **params}],
                          "output": {"path": "o"}}, check_inputs=False)
    return stage_plans(spec)[0]


def _live(keys: list[int]) -> pa.Table:
    return pa.table({"_rowkey": pa.array(keys, pa.int64()), "id": [f"d{k}" for k in keys],
                     "text": [f"text {k}" for k in keys], "dup_cluster": pa.array([None, "old", None][: len(keys)]
                                                                                  + [None] * (len(keys) - 3),
                                                                                  pa.string())})


def test_join_sets_the_decided_columns_and_drops():
    live = _live([10, 11, 12])
    dec = pa.table({"_rowkey": pa.array([10, 11, 12], pa.int64()), "dup_cluster": ["d10", None, "d10"],
                    "dup_of": [None, None, "d10"], "drop_reason": [None, None, "exact_duplicate"]})
    out = join(live, dec, _stage("exact_dedup"), keep_if_null=set())
    assert out.column("dup_cluster").to_pylist() == ["d10", None, "d10"]
    assert out.column("drop_reason").to_pylist() == [None, None, "exact_duplicate"]
    assert out.column("text").to_pylist() == live.column("text").to_pylist()
    kept = join(live, dec, _stage("exact_dedup"), keep_if_null={"dup_cluster"})
    assert kept.column("dup_cluster").to_pylist() == ["d10", "old", "d10"]


def test_join_repeats_rows_for_copies_and_reads_only_its_range():
    live = _live([5, 6])
    dec = pa.table({"_rowkey": pa.array([1, 5, 5, 6, 9], pa.int64()), "id": ["x", "d5", "d5#mix1", "d6", "y"],
                    "mix_copy": pa.array([0, 0, 1, 0, 0], pa.int32()), "drop_reason": pa.nulls(5, pa.string())})
    out = join(live, dec, _stage("mix", weights={"*": 1.0}), keep_if_null=set())
    assert out.column("id").to_pylist() == ["d5", "d5#mix1", "d6"]
    assert out.column("text").to_pylist() == ["text 5", "text 5", "text 6"]


def test_a_stage_that_loses_rows_is_an_error():
    dec = pa.table({"_rowkey": pa.array([10, 12], pa.int64()), "split": ["train", "eval"],
                    "drop_reason": pa.nulls(2, pa.string())})
    with pytest.raises(DecisionError, match="no row for 1 documents"):
        join(_live([10, 11, 12]), dec, _stage("split"), keep_if_null=set())


def test_project_keeps_key_and_declared_columns_and_refuses_undeclared_ones():
    out = pa.table({"_rowkey": [1], "text": ["t"], "split": ["eval"], "new_thing": [1]})
    with pytest.raises(DecisionError, match="undeclared column"):
        project(out, columns=["split"], input_columns=["_rowkey", "text"], stage="split")
    ok = project(out.drop_columns(["new_thing"]), columns=["split"], input_columns=["_rowkey", "text"], stage="split")
    assert ok.column_names == ["_rowkey", "split", "drop_reason"]


def test_a_ray_block_with_rows_of_two_units_takes_only_its_own_decisions(tmp_path):
    """A block Ray's reader makes may hold rows of units 0 and 2 (or a part of one unit): the decisions of
    unit 1, which lie inside its key range, are not its own and are left out, not an error."""
    from curator.decisions import ROW_BITS, apply_for_ray, write_block

    keys = [(u << ROW_BITS) + r for u in range(3) for r in range(3)]
    dec = pa.table({"_rowkey": pa.array(keys, pa.int64()), "dup_cluster": pa.nulls(9, pa.string()),
                    "dup_of": pa.nulls(9, pa.string()),
                    "drop_reason": [None, "exact_duplicate", None] * 3})
    files = write_block(dec, url=str(tmp_path), folder="dec").to_pylist()
    block = _live([keys[i] for i in (7, 0, 1, 2, 6, 8)])  # units 2 and 0, out of order
    out = apply_for_ray(block, url=str(tmp_path), pending=[(_stage("exact_dedup"), {"files": files})])
    assert out.column("_rowkey").to_pylist() == [keys[i] for i in (0, 2, 6, 8)]
    assert "drop_reason" not in out.column_names or out.column("drop_reason").null_count == out.num_rows
