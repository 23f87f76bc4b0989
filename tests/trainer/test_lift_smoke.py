"""bench/bench_lift.py end to end on the bundled sample: crawl WARC -> raw and curated datasets (curator
run, Ray) -> shared tokenizer -> two tiny trainings -> evaluation on both eval splits, the neutral text and
the multiple-choice set -> report."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_lift_chain_on_the_bundled_sample(ray_head, tmp_path):
    from bench.bench_lift import PROMPTS, TRAIN_ARMS, smoke

    res = smoke(tmp_path, extra_env={"RAY_ADDRESS": ray_head["gcs"]})
    docs = json.loads((tmp_path / "datasets.json").read_text())
    assert docs["raw"]["docs"]["train"] > docs["curated"]["docs"]["train"] > 0
    assert docs["curated"]["docs"]["eval"] > 0
    files = res["pack"]["files"]
    assert files["raw_train"]["tokens"] == files["curated_train"]["tokens"]  # the same token budget
    assert files["raw_full_train"]["tokens"] == 4000  # raw at its full size, capped at the budget
    assert files["neutral"]["documents"] == 20
    assert res["mc_baselines"]["chance"] == 0.25
    (mc_file,) = tmp_path.rglob("mc.jsonl")  # built from held-out documents: as many as the split left
    mc_lines = sum(1 for line in mc_file.read_text().splitlines() if line.strip())
    for arm in TRAIN_ARMS:
        r = res["arms"][arm]
        assert r["tokens"] == 6 * 4 * 32
        for split in ("curated_eval", "raw_eval", "neutral"):
            e = r["eval"][split]
            assert math.isfinite(e["loss"]) and e["tokens"] > 0 and 0 < e["bits_per_byte"] < 20
            assert abs(e["perplexity"] - math.exp(e["loss"])) < 1e-6 * e["perplexity"]
        assert r["eval"]["mc"]["questions"] == mc_lines > 0 and r["eval"]["mc"]["skipped"] == 0
        assert [s[: len(p)] for s, p in zip(r["samples"], PROMPTS, strict=True)] == PROMPTS
        steps = [c["step"] for c in r["curve"] if "loss" in c]
        assert steps == list(range(1, 7))
    assert (tmp_path / "result" / "lift_loss.png").stat().st_size > 5000
    saved = json.loads((tmp_path / "result" / "lift.json").read_text())
    assert saved["arms"].keys() == set(TRAIN_ARMS)
    assert sorted((r["arm"], r["seed"]) for r in saved["repeats"]) == [("curated", 1), ("raw", 1), ("raw_full", 1)]
