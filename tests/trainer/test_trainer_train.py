"""trainer.train: learning, exact resume, fine-tuning with frozen layers, DDP over gloo, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainer.checkpoint import load_checkpoint
from trainer.train import TrainConfig, lr_factor, main, run

REPO = Path(__file__).resolve().parents[2]


def config(job, tok, run_dir, **kw) -> TrainConfig:
    base = dict(data=str(job), run_dir=str(run_dir), tokenizer=str(tok) if tok else None, model="tiny", block_size=32,
                batch_size=4, max_steps=8, warmup_steps=2, lr=3e-3, min_lr=3e-4, log_interval=1,
                eval_interval=0, ckpt_interval=0, device="cpu", plot=False, tensorboard=False,
                tokenize_workers=1)
    base.update(kw)
    return TrainConfig(**base)


def test_lr_schedule_warms_up_then_decays_to_min():
    c = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=4, max_steps=14)
    f = [lr_factor(s, c) for s in range(15)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert abs(f[9] - 0.55) < 1e-12  # halfway down the cosine
    assert abs(f[14] - 0.1) < 1e-12
    assert all(a >= b for a, b in zip(f[3:], f[4:], strict=False))


def test_loss_falls_and_artifacts_are_written(job, tokenizer_path, tmp_path):
    cfg = config(job, tokenizer_path, tmp_path / "run", max_steps=30, batch_size=8, eval_interval=15,
                 eval_iters=4, log_interval=5, plot=True, tensorboard=True)
    s = run(cfg)
    assert s["losses"][-1] < s["losses"][0] - 0.5
    recs = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in recs if "eval_loss" in r]
    assert [r["step"] for r in evals] == [15, 30] and evals[1]["eval_loss"] < evals[0]["eval_loss"]
    assert abs(evals[1]["eval_ppl"] - torch.tensor(evals[1]["eval_loss"]).exp().item()) < 1e-3
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000
    ck = load_checkpoint(tmp_path / "run" / "ckpt.pt")
    from trainer.tokenizer import file_hash

    assert ck["manifest_hash"] == file_hash(job / "manifest.json")
    assert ck["tokenizer_hash"] == file_hash(tmp_path / "run" / "data" / "tokenizer.json")
    assert ck["step"] == ck["data_position"] == 30
    assert list((tmp_path / "run" / "tb").iterdir())  # TensorBoard events


def test_resume_gives_bit_identical_losses(job, tokenizer_path, tmp_path):
    # dropout: the RNG state must be restored too; accumulation: the data position is per step
    kw = dict(dropout=0.1, max_steps=6, grad_accum=2, batch_size=2)
    full = run(config(job, tokenizer_path, tmp_path / "a", **kw))["losses"]
    first = run(config(job, tokenizer_path, tmp_path / "b", stop_after=2, **kw))["losses"]
    rest = run(config(job, tokenizer_path, tmp_path / "b", resume=True, **kw))["losses"]
    assert len(first) == 2 and len(rest) == 4
    assert first + rest == full  # exact float equality
    steps = [json.loads(x)["step"] for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))


def test_resume_refuses_another_global_batch(job, tokenizer_path, tmp_path):
    run(config(job, tokenizer_path, tmp_path / "r", stop_after=2))
    with pytest.raises(ValueError, match="global batch"):
        run(config(job, tokenizer_path, tmp_path / "r", resume=True, batch_size=2))


def test_finetune_keeps_frozen_layers_unchanged(job, tokenizer_path, tmp_path):
    run(config(job, tokenizer_path, tmp_path / "base", model="mini", max_steps=3))
    base = load_checkpoint(tmp_path / "base" / "ckpt.pt")["model"]
    s = run(config(job, None, tmp_path / "ft", init_from=str(tmp_path / "base" / "ckpt.pt"),
                   freeze_layers=2, max_steps=4, lr=1e-2))
    assert len(s["losses"]) == 4
    ck = load_checkpoint(tmp_path / "ft" / "ckpt.pt")
    tuned = ck["model"]
    frozen = [k for k in base if k.startswith(("wte.", "wpe.", "lm_head.", "blocks.0.", "blocks.1."))]
    trained = [k for k in base if k.startswith(("blocks.2.", "blocks.3.", "ln_f."))]
    assert frozen and trained
    assert all(torch.equal(base[k], tuned[k]) for k in frozen)
    assert all(not torch.equal(base[k], tuned[k]) for k in trained if k.endswith("weight"))
    assert ck["tokenizer_json"] == load_checkpoint(tmp_path / "base" / "ckpt.pt")["tokenizer_json"]
    assert "blocks.1.mlp.c_fc.weight" in ck["frozen"]


def test_ddp_two_gloo_processes_match_one_process(job, tokenizer_path, tmp_path):
    """torchrun --nproc_per_node=2 at batch 2 each == one process at batch 4 (same global batch)."""
    single = run(config(job, tokenizer_path, tmp_path / "one", batch_size=4, max_steps=6))["losses"]
    run_dir = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "trainer", "--data", str(job), "--run-dir", str(run_dir), "--tokenizer", str(tokenizer_path),
           "--model", "tiny", "--block-size", "32", "--batch-size", "2", "--max-steps", "6",
           "--warmup-steps", "2", "--lr", "3e-3", "--min-lr", "3e-4", "--log-interval", "1",
           "--eval-interval", "3", "--eval-iters", "2", "--ckpt-interval", "0", "--device", "cpu",
           "--no-plot", "--no-tensorboard", "--tokenize-workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    ddp = [r["loss"] for r in recs if "loss" in r]
    assert len(ddp) == 6
    assert max(abs(a - b) for a, b in zip(single, ddp, strict=True)) < 1e-5
    assert [r["step"] for r in recs if "eval_loss" in r] == [3, 6]


def test_cli_reports_bad_input_clearly(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "nothing"), "--run-dir", str(tmp_path / "r"), "--device", "cpu"]) == 2
    assert "no Parquet files" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--run-dir", str(tmp_path / "r")])  # --data missing


def test_cli_reads_a_yaml_config(job, tokenizer_path, tmp_path, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"data: {job}\ntokenizer: {tokenizer_path}\nmodel: tiny\nblock_size: 16\nmax_steps: 2\n"
                   "batch_size: 2\nlog_interval: 1\neval_interval: 0\ndevice: cpu\nplot: false\n")
    assert main(["--config", str(cfg), "--run-dir", str(tmp_path / "y"), "--max-steps", "3"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["steps"] == 3  # the flag wins over the file
    assert load_checkpoint(out["checkpoint"])["model_config"]["block_size"] == 16


def test_fsdp_two_gloo_processes_match_one_process(job, tokenizer_path, tmp_path):
    """FSDP2 (fully_shard) over 2 gloo processes at batch 2 each == one process at batch 4; the
    checkpoint holds the full state, which loads into one process."""
    single = run(config(job, tokenizer_path, tmp_path / "one", batch_size=4, max_steps=6))["losses"]
    run_dir = tmp_path / "fsdp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "trainer", "--data", str(job), "--run-dir", str(run_dir), "--tokenizer", str(tokenizer_path),
           "--model", "tiny", "--block-size", "32", "--batch-size", "2", "--max-steps", "6",
           "--warmup-steps", "2", "--lr", "3e-3", "--min-lr", "3e-4", "--log-interval", "1",
           "--eval-interval", "3", "--eval-iters", "2", "--ckpt-interval", "3", "--device", "cpu",
           "--no-plot", "--no-tensorboard", "--tokenize-workers", "1", "--parallel", "fsdp"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    sharded = [r["loss"] for r in recs if "loss" in r]
    assert len(sharded) == 6
    assert max(abs(a - b) for a, b in zip(single, sharded, strict=True)) < 1e-5
    ck = load_checkpoint(run_dir / "ckpt.pt")
    assert ck["parallel"] == "fsdp" and ck["step"] == 6
    one = load_checkpoint(tmp_path / "one" / "ckpt.pt")
    assert set(ck["model"]) == set(one["model"])
    assert max((ck["model"][k] - one["model"][k]).abs().max().item() for k in one["model"]) < 1e-4
    from trainer.checkpoint import build_model

    assert build_model(ck).cfg.n_layer == 2


def test_progress_file_tells_step_losses_and_eta_while_running(job, tokenizer_path, tmp_path):
    run_dir = tmp_path / "p"
    seen = []

    def on_log(rec):
        seen.append(json.loads((run_dir / "progress.json").read_text()))

    run(config(job, tokenizer_path, run_dir, max_steps=6, log_interval=2, eval_interval=3, eval_iters=1), on_log)
    train_views = [v for v in seen if v["train_loss"] is not None]
    assert [v["step"] for v in seen] == [2, 3, 4, 6, 6]  # log 2, eval 3, log 4, log 6, final eval 6
    assert all(v["state"] == "running" and v["max_steps"] == 6 for v in seen)
    assert all(v["eta_s"] is not None and v["eta_s"] >= 0 and v["tokens_per_s"] > 0 for v in train_views)
    assert seen[1]["eval_loss"] is not None and seen[1]["eval_step"] == 3
    final = json.loads((run_dir / "progress.json").read_text())
    assert final["state"] == "done" and final["step"] == 6 and final["eta_s"] == 0.0
    assert final["checkpoint"] == str(run_dir / "ckpt.pt") and final["tokens"] == 6 * 4 * 32
    assert not list(run_dir.glob("*.tmp"))


def test_progress_file_records_a_failure(tmp_path):
    with pytest.raises(FileNotFoundError):
        run(TrainConfig(data=str(tmp_path / "none"), run_dir=str(tmp_path / "f"), device="cpu"))
    p = json.loads((tmp_path / "f" / "progress.json").read_text())
    assert p["state"] == "failed" and "no Parquet files" in p["error"]


def test_help_names_curator_train_and_explains_every_option(capsys):
    from dataclasses import fields

    from trainer.train import build_parser

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: curator train")
    ap = build_parser()
    helps = {a.dest: a.help for a in ap._actions if a.dest != "help"}
    assert {f.name for f in fields(TrainConfig)} <= set(helps)
    assert all(h and len(h) > 8 for h in helps.values()), [k for k, h in helps.items() if not h]


def test_bad_choices_and_checkpoint_flags():
    from trainer.train import config_from_args

    with pytest.raises(SystemExit):
        config_from_args(["--data", "x", "--arch", "rnn"])
    assert config_from_args(["--data", "x", "--grad-checkpoint"]).grad_checkpoint == "full"
    assert config_from_args(["--data", "x", "--grad-checkpoint", "selective"]).grad_checkpoint == "selective"
    assert config_from_args(["--data", "x", "--no-grad-checkpoint"]).grad_checkpoint == "none"
    with pytest.raises(ValueError, match="parallel"):
        TrainConfig(parallel="zero3")


def test_a_prepared_token_folder_is_accepted_as_data(job, tokenizer_path, tmp_path):
    from trainer.data import prepare

    prepare(job, tmp_path / "prep", tokenizer=tokenizer_path, workers=1, backend="pool")
    a = run(config(job, tokenizer_path, tmp_path / "a", max_steps=3))["losses"]
    b = run(config(tmp_path / "prep", None, tmp_path / "b", max_steps=3))["losses"]
    assert a == b and not (tmp_path / "b" / "data").exists()
