"""trainer.evaluate and trainer.generate: split loss, the multiple-choice scorer, sampling."""

from __future__ import annotations

import json
import math

import pytest
import torch

from trainer.checkpoint import load_for_inference
from trainer.evaluate import choice_logprobs, main, score_multiple_choice, split_loss
from trainer.generate import filter_logits, generate
from trainer.generate import main as generate_main
from trainer.train import TrainConfig, run

FACTS = [
    "the cat sat on the mat.",
    "the dog ran to the park.",
    "the bird flew over the sea.",
]


@pytest.fixture(scope="module")
def memorized(tmp_path_factory, tokenizer_path, make_job):
    """A tiny model trained until it has memorized three short sentences."""
    root = tmp_path_factory.mktemp("mem")
    job = make_job(root / "job", FACTS * 40, FACTS * 4)
    run(TrainConfig(data=str(job), run_dir=str(root / "run"), tokenizer=str(tokenizer_path), model="tiny",
                    block_size=16, batch_size=16, max_steps=100, warmup_steps=5, lr=1e-2, min_lr=1e-3,
                    weight_decay=0.0, log_interval=20, eval_interval=0, ckpt_interval=0, device="cpu",
                    plot=False, tensorboard=False, tokenize_workers=1))
    model, tok, _ = load_for_inference(root / "run" / "ckpt.pt", torch.device("cpu"))
    return model, tok, root


def test_multiple_choice_scorer_on_a_crafted_case(memorized):
    model, tok, root = memorized
    path = root / "mc.jsonl"
    items = [
        {"context": "the cat sat on the", "choices": [" sea.", " mat.", " park."], "answer": 1},
        {"context": "the dog ran to the", "choices": [" park.", " mat."], "answer": 0},
        {"context": "the bird flew over the", "choices": [" mat.", " park.", " sea."], "answer": 2},
        {"context": "the cat sat on the", "choices": [" sea.", " mat."], "answer": 0},  # wrong on purpose
    ]
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n{not json}\n"
                    + json.dumps({"context": "x", "choices": ["a"], "answer": 3}) + "\n")
    r = score_multiple_choice(model, tok, path, torch.device("cpu"))
    assert r["questions"] == 4 and r["skipped"] == 2
    assert r["accuracy"] == 0.75 and r["accuracy_norm"] == 0.75


def test_choice_logprob_is_the_sum_over_the_choice_tokens(memorized):
    model, tok, _ = memorized
    ctx, ch = "the dog ran", " to the park."
    (score, n), = choice_logprobs(model, tok, ctx, [ch], torch.device("cpu"))
    ids = tok.encode(ctx + ch, add_special_tokens=False).ids
    n_ctx = len(tok.encode(ctx, add_special_tokens=False).ids)
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ids[:-1]]))[0].double(), -1)
    want = sum(lp[i - 1, ids[i]].item() for i in range(n_ctx, len(ids)))
    assert n == len(ids) - n_ctx and abs(score - want) < 1e-4


def test_temperature_zero_is_greedy(memorized):
    model, tok, _ = memorized
    idx = torch.tensor([tok.encode("the bird", add_special_tokens=False).ids])
    out = generate(model, idx, 10, temperature=0.0)
    manual = idx
    with torch.no_grad():
        for _ in range(10):
            manual = torch.cat([manual, model(manual)[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, manual)
    assert tok.decode(out[0].tolist()).startswith("the bird flew over the")


def test_sampling_is_seeded_and_top_k_one_is_greedy(memorized):
    model, tok, _ = memorized
    idx = torch.tensor([tok.encode("the", add_special_tokens=False).ids])
    a = generate(model, idx, 8, 1.0, generator=torch.Generator().manual_seed(1))
    b = generate(model, idx, 8, 1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert torch.equal(generate(model, idx, 5, 1.5, top_k=1), generate(model, idx, 5, 0.0))


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    inf = float("-inf")
    assert filter_logits(logits, top_k=2)[0, 2:].tolist() == [inf, inf]
    kept = filter_logits(logits, top_p=0.7)[0]
    assert torch.isfinite(kept).tolist() == [True, True, False, False]  # 0.5 < 0.7 <= 0.8
    assert torch.isfinite(filter_logits(logits, top_p=0.5)[0]).tolist() == [True, False, False, False]
    assert torch.equal(filter_logits(logits), logits)


def test_split_loss_and_clis(memorized, capsys):
    model, tok, root = memorized
    files = [str(root / "job" / "eval" / "part-0.parquet")]
    r = split_loss(model, tok, files, 16, 4, torch.device("cpu"))
    assert r["documents"] == 12 and r["loss"] < 1.0 and abs(r["perplexity"] - math.exp(r["loss"])) < 1e-9
    ck = str(root / "run" / "ckpt.pt")
    assert main([ck, "--parquet", *files]) == 0
    assert json.loads(capsys.readouterr().out)["split"]["documents"] == 12
    assert generate_main([ck, "--prompt", "the cat", "--temperature", "0", "--max-new-tokens", "12"]) == 0
    assert capsys.readouterr().out.startswith("the cat sat on the")
    assert main([str(root / "missing.pt")]) == 2


def test_hellaswag_and_arc_shapes_are_scored(memorized, capsys):
    model, tok, root = memorized
    path = root / "shapes.jsonl"
    lines = [
        {"ctx": "the cat sat on the", "endings": ["sea.", "mat.", "park."], "label": "1"},
        {"ctx_a": "the dog ran", "ctx_b": "to the", "endings": ["park.", "mat."], "label": 0},
        {"question": {"stem": "the bird flew over the", "choices": [{"text": "mat.", "label": "A"},
                      {"text": "sea.", "label": "B"}]}, "answerKey": "B"},
        {"question": "the cat sat on the", "choices": {"text": ["park.", "mat."], "label": ["1", "2"]},
         "answerKey": "2"},
        {"question": "x", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "C"},  # bad key
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    r = score_multiple_choice(model, tok, path, torch.device("cpu"))
    assert r["questions"] == 4 and r["skipped"] == 1
    assert r["shapes"] == {"hellaswag": 2, "arc": 2}
    assert r["accuracy"] is not None
    from trainer.evaluate import parse_item

    assert parse_item(lines[0]) == ("the cat sat on the", [" sea.", " mat.", " park."], 1, "hellaswag")
    assert parse_item(lines[2])[0] == "Question: the bird flew over the\nAnswer:"
    assert parse_item(lines[3])[1:3] == ([" park.", " mat."], 1)


def test_no_scorable_question_is_valid_json_and_a_failure(memorized, capsys):
    _, _, root = memorized
    bad = root / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\nnot json\n')
    assert main([str(root / "run" / "ckpt.pt"), "--mc", str(bad)]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)  # strict JSON: no NaN
    assert out["multiple_choice"]["questions"] == 0 and out["multiple_choice"]["accuracy"] is None
    assert "no scorable question" in captured.err
