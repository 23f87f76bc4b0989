"""trainer.seq2seq and trainer.span: what each attention sees, span corruption, training in the same loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trainer.checkpoint import load_checkpoint, load_for_inference
from trainer.evaluate import main as evaluate_main
from trainer.generate import generate_seq2seq
from trainer.generate import main as generate_main
from trainer.seq2seq import EncDecConfig, EncoderDecoder, sinusoids
from trainer.span import SpanTask, corrupt, decode_with_sentinels, encode_with_sentinels, span_shape
from trainer.train import TrainConfig, run


def model(**kw) -> EncoderDecoder:
    torch.manual_seed(0)
    cfg = dict(vocab_size=90, n_sentinels=6, src_len=20, tgt_len=12, n_enc_layer=2, n_dec_layer=2, n_head=2,
               n_embd=32)
    return EncoderDecoder(EncDecConfig(**{**cfg, **kw})).eval()


@pytest.mark.parametrize("pos", ["sinusoidal", "learned"])
def test_encoder_sees_the_whole_source(pos):
    m = model(pos=pos)
    src = torch.randint(0, 90, (2, 20))
    other = src.clone()
    other[:, -1] = (other[:, -1] + 1) % 90  # change only the last source token
    with torch.no_grad():
        a, b = m.encode(src), m.encode(other)
    assert (a[:, 0] - b[:, 0]).abs().max() > 1e-4  # the first position sees it: bidirectional


@pytest.mark.parametrize("shared", [True, False])
def test_decoder_never_sees_future_targets(shared):
    m = model(shared_embeddings=shared)
    src, tgt = torch.randint(0, 96, (2, 20)), torch.randint(0, 96, (2, 12))
    changed = tgt.clone()
    changed[:, 7:] = torch.randint(0, 96, (2, 5))
    with torch.no_grad():
        a, b = m(src, tgt), m(src, changed)
    assert a.shape == (2, 12, 96)
    assert torch.equal(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_cross_attention_carries_the_source():
    m = model()
    tgt = torch.randint(0, 96, (1, 12))
    with torch.no_grad():
        a = m(torch.randint(0, 90, (1, 20)), tgt)
        b = m(torch.randint(0, 90, (1, 20)), tgt)
    assert (a - b).abs().max() > 1e-4  # the same target, another source: other logits at every step
    assert ((a - b).abs().amax(-1) > 1e-6).all()


def test_shared_and_separate_embeddings():
    shared, separate = model(shared_embeddings=True), model(shared_embeddings=False)
    assert shared.src_wte is shared.tgt_wte and shared.lm_head.weight is shared.tgt_wte.weight
    assert separate.src_wte is not separate.tgt_wte and separate.lm_head.weight is separate.tgt_wte.weight
    assert separate.num_params() - shared.num_params() == separate.src_wte.weight.numel()


def test_sinusoids_are_the_papers_table():
    t = sinusoids(50, 8)
    pos, i = 13, 2  # channel pair 2: wavelength 10000 ** (4 / 8)
    assert abs(t[pos, 2 * i].item() - np.sin(pos / 10000 ** (2 * i / 8))) < 1e-6
    assert abs(t[pos, 2 * i + 1].item() - np.cos(pos / 10000 ** (2 * i / 8))) < 1e-6


def test_fused_and_plain_losses_agree():
    a, b = model(loss_impl="plain"), model(loss_impl="fused", loss_chunk=5)
    b.load_state_dict(a.state_dict())
    src, tin, tout = torch.randint(0, 96, (2, 20)), torch.randint(0, 96, (2, 12)), torch.randint(0, 96, (2, 12))
    tout[0, 3] = -1
    assert abs(a(src, tin, tout).item() - b(src, tin, tout).item()) < 1e-5


def test_span_corruption_hides_spans_behind_sentinels_and_can_be_undone():
    shape = span_shape(40, 0.15, 3.0)
    assert (shape.noise, shape.spans, shape.src_len, shape.tgt_len) == (6, 2, 36, 9)
    toks = np.arange(100, 140)
    for seed in range(20):
        src, tgt = corrupt(toks, shape, sentinel0=500, eot=1, rng=np.random.default_rng(seed))
        assert len(src) == shape.src_len and len(tgt) == shape.tgt_len and tgt[-1] == 1
        assert [t for t in src if t >= 500] == [500, 501] and [t for t in tgt if t >= 500] == [500, 501]
        # put every span back in place of its sentinel: the original window
        spans, cur = {}, None
        for t in tgt[:-1]:
            if t >= 500:
                cur = t
                spans[cur] = []
            else:
                spans[cur].append(t)
        restored = [x for t in src for x in (spans[t] if t >= 500 else [t])]
        assert restored == toks.tolist()
        assert all(len(v) >= 1 for v in spans.values())


def test_span_task_is_a_pure_function_of_step_and_rank_split():
    toks = np.random.default_rng(0).integers(0, 80, 5000).astype(np.uint16)
    t = SpanTask(toks, toks, 40, seed=3, sentinel0=90, eot=1, start=1)
    whole = t.batch(5, 4)
    halves = [t.batch(5, 2, rank=r, world=2) for r in range(2)]
    for k in range(3):
        assert np.array_equal(np.concatenate([h[k] for h in halves]), whole[k])
    assert all(np.array_equal(x, y) for x, y in zip(t.batch(5, 4), whole, strict=True))
    src, tin, tout = whole
    assert np.array_equal(tin[:, 1:], tout[:, :-1]) and (tin[:, 0] == 1).all()


def test_sentinel_markers_round_trip(tokenizer_path):
    from trainer.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_path)
    ids = encode_with_sentinels(tok, "the software<extra_id_0> without<extra_id_1>", 1000)
    assert ids.count(1000) == 1 and ids.count(1001) == 1
    assert decode_with_sentinels(tok, ids, 1000) == "the software<extra_id_0> without<extra_id_1>"


def test_loss_falls_in_the_same_loop_and_checkpoints_sample_and_evaluate(job, tokenizer_path, tmp_path, capsys):
    cfg = TrainConfig(data=str(job), run_dir=str(tmp_path / "ed"), tokenizer=str(tokenizer_path), arch="encdec",
                      model="tiny", pos="sinusoidal", block_size=48, batch_size=8, max_steps=40, warmup_steps=4,
                      lr=5e-3, min_lr=5e-4, log_interval=5, eval_interval=20, eval_iters=2, ckpt_interval=0,
                      device="cpu", plot=False, tensorboard=False, tokenize_workers=1)
    s = run(cfg)
    assert s["losses"][-1] < s["losses"][0] - 1.0
    ck = load_checkpoint(tmp_path / "ed" / "ckpt.pt")
    assert ck["arch"] == "encdec" and ck["task"]["kind"] == "span" and ck["task"]["sentinel0"] == 400
    assert ck["model_config"]["n_sentinels"] == span_shape(48).spans
    recs = [json.loads(x) for x in (tmp_path / "ed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "eval_loss" in r] == [20, 40]
    # resume gives the same losses as an uninterrupted run
    part = run(TrainConfig(**{**cfg.__dict__, "run_dir": str(tmp_path / "ed2"), "stop_after": 20}))["losses"]
    rest = run(TrainConfig(**{**cfg.__dict__, "run_dir": str(tmp_path / "ed2"), "resume": True}))["losses"]
    assert part + rest == s["losses"]
    model_, tok, _ = load_for_inference(tmp_path / "ed" / "ckpt.pt", torch.device("cpu"))
    src = torch.tensor([encode_with_sentinels(tok, "Permission is hereby<extra_id_0>", 400)])
    out = generate_seq2seq(model_, src, 6, start_id=ck["task"]["start"], temperature=0.0)
    assert out.shape[1] <= 7 and out[0, 0] == ck["task"]["start"]
    assert generate_main([str(tmp_path / "ed" / "ckpt.pt"), "--prompt", "Permission is hereby",
                          "--temperature", "0", "--max-new-tokens", "5"]) == 0
    assert "<extra_id_0>" in capsys.readouterr().out
    assert evaluate_main([str(tmp_path / "ed" / "ckpt.pt"), "--parquet", str(job / "eval" / "part-0.parquet")]) == 0
    r = json.loads(capsys.readouterr().out)["split"]
    assert r["documents"] == 40 and r["loss"] < s["losses"][0]
