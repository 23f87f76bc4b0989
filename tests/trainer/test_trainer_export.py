"""trainer.export: the Hugging Face folder loads in stock transformers, offline, with our logits."""

from __future__ import annotations

import json

import pytest
import torch

from trainer.checkpoint import save_checkpoint
from trainer.export import export, main
from trainer.generate import generate
from trainer.model import GPT, preset
from trainer.tokenizer import EOT, load_tokenizer

transformers = pytest.importorskip("transformers")


def checkpoint(tmp_path, tokenizer_path, **cfg) -> tuple[GPT, str]:
    """A GPT with large random weights (so a wrong mapping shows in the logits) saved as a checkpoint."""
    tok = load_tokenizer(tokenizer_path)
    torch.manual_seed(0)
    model = GPT(preset("tiny", vocab_size=tok.get_vocab_size(), block_size=24, **cfg)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3 + (1.0 if p.dim() == 1 and p.shape[0] == 64 else 0.0))
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"model": model.state_dict(), "model_config": model.cfg.to_dict(), "arch": "gpt",
                           "step": 7, "manifest_hash": "abc", "tokenizer_json": tokenizer_path.read_text()})
    return model, str(path)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.mark.parametrize("pos,bias,arch", [("learned", True, "GPT2LMHeadModel"),
                                           ("learned", False, "GPT2LMHeadModel"),
                                           ("rope", True, "GPTNeoXForCausalLM"),
                                           ("rope", False, "GPTNeoXForCausalLM")])
def test_transformers_gives_our_logits_and_greedy_generation(tmp_path, tokenizer_path, pos, bias, arch):
    ours, ck = checkpoint(tmp_path, tokenizer_path, pos=pos, bias=bias)
    summary = export(ck, tmp_path / "hf")
    assert summary["architecture"] == arch
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    assert type(hf).__name__ == arch
    x = torch.randint(0, ours.cfg.vocab_size, (2, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = ours(x), hf(input_ids=x).logits
    assert a.shape == b.shape
    assert (a - b).abs().max().item() < 1e-4 * a.abs().max().item()
    prompt = x[:1, :5]
    want = generate(ours, prompt, 8, temperature=0.0)
    got = hf.generate(prompt, max_new_tokens=8, do_sample=False, attention_mask=torch.ones_like(prompt))
    assert torch.equal(got, want)


def test_tokenizer_folder_names_its_special_tokens(tmp_path, tokenizer_path):
    _, ck = checkpoint(tmp_path, tokenizer_path)
    export(ck, tmp_path / "hf")
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    ours = load_tokenizer(tokenizer_path)
    assert hf_tok.eos_token == EOT and hf_tok.eos_token_id == ours.token_to_id(EOT)
    assert hf_tok.pad_token == "<|pad|>"
    text = "Permission is hereby granted, free of charge, to any person"
    assert hf_tok(text)["input_ids"] == ours.encode(text, add_special_tokens=False).ids
    assert hf_tok.decode(hf_tok(text)["input_ids"]) == text
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert cfg["eos_token_id"] == ours.token_to_id(EOT) and cfg["n_positions"] == 24


def test_sharded_bf16_export_loads_the_same_weights(tmp_path, tokenizer_path):
    ours, ck = checkpoint(tmp_path, tokenizer_path)
    assert main([ck, str(tmp_path / "one"), "--dtype", "bfloat16"]) == 0
    summary = export(ck, tmp_path / "sharded", dtype="bfloat16", max_shard_mb=0.02)
    assert len(summary["files"]) > 2
    index = json.loads((tmp_path / "sharded" / "model.safetensors.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == summary["files"]
    one = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "one").eval()
    many = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "sharded").eval()
    assert one.dtype == torch.bfloat16
    for (ka, va), (kb, vb) in zip(one.state_dict().items(), many.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    x = torch.randint(0, ours.cfg.vocab_size, (1, 24))
    with torch.no_grad():
        ref = ours(x)
        got = one(input_ids=x).logits.float()
    assert (ref - got).abs().max().item() < 0.05 * ref.abs().max().item()  # bf16 weights


def test_encoder_decoder_export_is_refused(tmp_path, tokenizer_path):
    path = tmp_path / "ed.pt"
    save_checkpoint(path, {"arch": "encdec", "model": {}, "model_config": {}, "tokenizer_json": "{}"})
    with pytest.raises(ValueError, match="encoder-decoder"):
        export(path, tmp_path / "out")
