"""trainer.ray_train and the Ray Data tokenizer path, on the session's local Ray cluster (CPU, gloo)."""

from __future__ import annotations

import json

import pytest

from trainer.checkpoint import load_checkpoint
from trainer.data import prepare

pytestmark = pytest.mark.ray


def test_ray_data_tokenizing_matches_the_process_pool(ray_cluster, job, tokenizer_path, tmp_path):
    a = prepare(job, tmp_path / "ray", tokenizer=tokenizer_path, backend="auto", workers=2)
    assert a["train"]["backend"] == "ray"
    prepare(job, tmp_path / "pool", tokenizer=tokenizer_path, backend="pool", workers=1)
    for split in ("train", "eval"):
        assert (tmp_path / "ray" / f"{split}.bin").read_bytes() == (tmp_path / "pool" / f"{split}.bin").read_bytes()


def test_ray_train_two_cpu_workers(ray_cluster, job, tokenizer_path, tmp_path):
    from trainer.ray_train import run_ray_training

    run_dir = tmp_path / "rt"
    result = run_ray_training({
        "data": str(job), "run_dir": str(run_dir), "tokenizer": str(tokenizer_path), "model": "tiny",
        "block_size": 32, "batch_size": 2, "max_steps": 4, "warmup_steps": 1, "log_interval": 1,
        "eval_interval": 2, "eval_iters": 2, "ckpt_interval": 0, "plot": False, "tensorboard": False,
        "tokenize_backend": "pool", "tokenize_workers": 1, "num_workers": 2, "use_gpu": False,
    })
    assert result["error"] is None, result["error"]
    assert result["metrics"]["step"] == 4 and "loss" in result["metrics"] and "eval_loss" in result["metrics"]
    ck = load_checkpoint(result["checkpoint"])
    assert ck["step"] == 4 and ck["global_batch"] == 4 and len(ck["rng"]) == 2
    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "loss" in r] == [1, 2, 3, 4]
    assert [r["step"] for r in recs if "eval_loss" in r] == [2, 4]


def test_unknown_option_is_refused():
    from trainer.ray_train import run_ray_training

    with pytest.raises(ValueError, match="unknown training option"):
        run_ray_training({"data": "x", "learning_rate": 1.0})
