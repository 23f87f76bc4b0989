"""Stage wrappers without Ray: live/dropped routing, source filter, stats deltas, rejected sampling."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curator.execute import StageRunner, split_live, tag_drops


class _Stats:
    """Stands in for the StatsCollector actor handle: records ``add_stage.remote`` calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        outer = self

        class _Method:
            def remote(self, *args):
                outer.calls.append(args)

        self.add_stage = _Method()


def _table():
    return pa.table({"id": ["1", "2", "3", "4"], "text": ["abc", "abcdefg", "x", "zz"],
                     "source": ["web", "web", "book", "web"]})


def test_source_filter_counts_passthrough_as_in_and_out():
    stats = _Stats()
    out = StageRunner("min_length", {"min_chars": 5}, 3, stats, 1.0, 0, sources=["w*"])(_table())
    reasons = dict(zip(out.column("id").to_pylist(), out.column("drop_reason").to_pylist()))
    assert reasons == {"1": "too_short", "2": None, "3": None, "4": "too_short"}
    assert set(out.column("drop_stage").to_pylist()) == {"min_length", None}
    (index, delta), = stats.calls
    assert index == 3
    assert (delta["docs_in"], delta["docs_out"], delta["chars_in"], delta["chars_out"]) == (4, 2, 13, 8)
    assert delta["drops"] == {"too_short": 2}


def test_already_dropped_rows_bypass_later_stages():
    first = StageRunner("min_length", {"min_chars": 3}, 0, None, 1.0, 0)(_table())
    stats = _Stats()
    second = StageRunner("min_length", {"min_chars": 5}, 1, stats, 1.0, 0)(first)
    by_id = {r["id"]: (r["drop_reason"], r["drop_stage"]) for r in second.to_pylist()}
    assert by_id["3"] == ("too_short", "min_length")
    assert by_id["1"] == ("too_short", "min_length") and by_id["2"] == (None, None)
    assert stats.calls[0][1]["docs_in"] == 2  # "3" and "4" were dropped by the first stage
    live, dead = split_live(second)
    assert live.column("id").to_pylist() == ["2"] and len(dead) == 3


@pytest.mark.parametrize("sample,expect_text", [(1.0, 2), (0.0, 0)])
def test_rejected_sampling_clears_text_of_unsampled_drops(sample, expect_text):
    t = _table().append_column("drop_reason", pa.array(["r", None, "r", None], pa.string()))
    tagged, counts = tag_drops(t, "s", sample, seed=0)
    assert counts == {"r": 2}
    texts = [r["text"] for r in tagged.to_pylist() if r["drop_reason"]]
    assert sum(x is not None for x in texts) == expect_text
    assert [r["text"] for r in tagged.to_pylist() if not r["drop_reason"]] == ["abcdefg", "zz"]


def test_stage_that_removes_rows_is_an_error():
    runner = StageRunner("min_length", {}, 0, None, 1.0, 0)
    runner.stage = lambda t: t.slice(0, 1)
    with pytest.raises(RuntimeError, match="changed the number of rows"):
        runner(_table())
