"""Export a GPT checkpoint as a Hugging Face folder that stock ``transformers`` loads offline.

``python -m trainer export CKPT OUT`` writes ``OUT/model.safetensors`` (or shards and their index with
``--max-shard-mb``), ``OUT/config.json``, ``OUT/generation_config.json`` and the tokenizer as a
``PreTrainedTokenizerFast`` folder (``tokenizer.json``, ``tokenizer_config.json`` naming the end-of-text
token as ``eos_token``/``bos_token``, ``special_tokens_map.json``). Then
``AutoModelForCausalLM.from_pretrained(OUT)`` and ``AutoTokenizer.from_pretrained(OUT)`` give our
model's logits (to float tolerance) and ``generate`` works.

Our GPT maps exactly onto two stock architectures:

- learned positions -> ``GPT2LMHeadModel`` (pre-LayerNorm blocks, fused q/k/v, tanh GELU, tied head;
  GPT-2 stores linear weights as (in, out) ``Conv1D``, so they are transposed; a model trained without
  biases gets zero biases, which is exact);
- rotary positions -> ``GPTNeoXForCausalLM`` with ``use_parallel_residual=False`` (sequential
  residuals, LayerNorm, tanh GELU, rotary over the whole head in the same half-split layout). Llama is
  not used: it has RMSNorm and a gated MLP, which our model does not. NeoX keeps q/k/v interleaved per
  head, so the fused projection's rows are permuted.

The padded rows of the embedding table are dropped (the tokenizer never produces those ids). Writing
the files needs only torch and safetensors; transformers is needed only to load them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from trainer.checkpoint import build_model, load_checkpoint
from trainer.model import GPT
from trainer.tokenizer import EOT, PAD

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _bias(lin_or_ln, n: int) -> torch.Tensor:
    b = getattr(lin_or_ln, "bias", None)
    return b.detach() if b is not None else torch.zeros(n)


def gpt2_state(model: GPT) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, config.json dict) of GPT2LMHeadModel for a learned-position GPT."""
    c = model.cfg
    C, V = c.n_embd, c.vocab_size
    sd = {"transformer.wte.weight": model.wte.weight[:V], "transformer.wpe.weight": model.wpe.weight}
    for i, b in enumerate(model.blocks):
        p = f"transformer.h.{i}."
        sd[p + "ln_1.weight"], sd[p + "ln_1.bias"] = b.ln_1.weight, _bias(b.ln_1, C)
        sd[p + "attn.c_attn.weight"] = b.attn.c_attn.weight.t()  # Conv1D: (in, out)
        sd[p + "attn.c_attn.bias"] = _bias(b.attn.c_attn, 3 * C)
        sd[p + "attn.c_proj.weight"] = b.attn.c_proj.weight.t()
        sd[p + "attn.c_proj.bias"] = _bias(b.attn.c_proj, C)
        sd[p + "ln_2.weight"], sd[p + "ln_2.bias"] = b.ln_2.weight, _bias(b.ln_2, C)
        sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"] = b.mlp.c_fc.weight.t(), _bias(b.mlp.c_fc, 4 * C)
        sd[p + "mlp.c_proj.weight"] = b.mlp.c_proj.weight.t()
        sd[p + "mlp.c_proj.bias"] = _bias(b.mlp.c_proj, C)
    sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"] = model.ln_f.weight, _bias(model.ln_f, C)
    config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": V,
        "n_positions": c.block_size, "n_embd": C, "n_layer": c.n_layer, "n_head": c.n_head,
        "n_inner": 4 * C, "activation_function": "gelu_pytorch_tanh", "resid_pdrop": 0.0, "embd_pdrop": 0.0,
        "attn_pdrop": 0.0, "layer_norm_epsilon": 1e-5, "initializer_range": 0.02, "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
        "tie_word_embeddings": True, "use_cache": True,
    }
    return sd, config


def neox_state(model: GPT) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, config.json dict) of GPTNeoXForCausalLM (sequential residuals) for a rotary GPT."""
    c = model.cfg
    C, V, nh = c.n_embd, c.vocab_size, c.n_head
    hs = C // nh

    def per_head(t: torch.Tensor) -> torch.Tensor:  # rows [q | k | v] -> [q_h k_h v_h for each head]
        return t.reshape(3, nh, hs, *t.shape[1:]).transpose(0, 1).reshape(t.shape)

    sd = {"gpt_neox.embed_in.weight": model.wte.weight[:V]}
    for i, b in enumerate(model.blocks):
        p = f"gpt_neox.layers.{i}."
        sd[p + "input_layernorm.weight"], sd[p + "input_layernorm.bias"] = b.ln_1.weight, _bias(b.ln_1, C)
        sd[p + "post_attention_layernorm.weight"] = b.ln_2.weight
        sd[p + "post_attention_layernorm.bias"] = _bias(b.ln_2, C)
        sd[p + "attention.query_key_value.weight"] = per_head(b.attn.c_attn.weight)
        sd[p + "attention.dense.weight"] = b.attn.c_proj.weight
        if c.bias:
            sd[p + "attention.query_key_value.bias"] = per_head(b.attn.c_attn.bias)
            sd[p + "attention.dense.bias"] = b.attn.c_proj.bias
        sd[p + "mlp.dense_h_to_4h.weight"] = b.mlp.c_fc.weight
        sd[p + "mlp.dense_h_to_4h.bias"] = _bias(b.mlp.c_fc, 4 * C)
        sd[p + "mlp.dense_4h_to_h.weight"] = b.mlp.c_proj.weight
        sd[p + "mlp.dense_4h_to_h.bias"] = _bias(b.mlp.c_proj, C)
    sd["gpt_neox.final_layer_norm.weight"] = model.ln_f.weight
    sd["gpt_neox.final_layer_norm.bias"] = _bias(model.ln_f, C)
    config = {
        "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "vocab_size": V, "hidden_size": C,
        "num_hidden_layers": c.n_layer, "num_attention_heads": nh, "intermediate_size": 4 * C,
        "hidden_act": "gelu_pytorch_tanh", "max_position_embeddings": c.block_size, "layer_norm_eps": 1e-5,
        "use_parallel_residual": False, "attention_bias": c.bias, "attention_dropout": 0.0,
        "hidden_dropout": 0.0, "initializer_range": 0.02, "tie_word_embeddings": True, "use_cache": True,
        "rope_parameters": {"rope_type": "default", "rope_theta": c.rope_base, "partial_rotary_factor": 1.0},
        "rotary_pct": 1.0, "rotary_emb_base": c.rope_base,  # the same, under the names of older versions
    }
    return sd, config


def _shards(sd: dict[str, torch.Tensor], max_bytes: int) -> list[dict[str, torch.Tensor]]:
    shards, cur, size = [], {}, 0
    for k, v in sd.items():
        n = v.numel() * v.element_size()
        if cur and max_bytes and size + n > max_bytes:
            shards.append(cur)
            cur, size = {}, 0
        cur[k], size = v, size + n
    return shards + [cur]


def write_tokenizer(tokenizer_json: str, out: Path, model_max_length: int) -> dict:
    """tokenizer.json + tokenizer_config.json + special_tokens_map.json; returns the special token ids."""
    tok = json.loads(tokenizer_json)
    ids = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    if EOT not in ids:
        raise ValueError(f"the checkpoint's tokenizer has no {EOT!r} token")
    (out / "tokenizer.json").write_text(tokenizer_json)
    special = {"bos_token": EOT, "eos_token": EOT, "unk_token": EOT}
    if PAD in ids:
        special["pad_token"] = PAD
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": False, "add_bos_token": False, "add_eos_token": False, **special,
    }, indent=2))
    return {"eos_token_id": ids[EOT], "bos_token_id": ids[EOT], "pad_token_id": ids.get(PAD)}


def export(ckpt_path: str | Path, out: str | Path, dtype: str = "float32", max_shard_mb: float = 0) -> dict:
    """Write the Hugging Face folder; returns a summary (architecture, files, parameter count)."""
    from safetensors.torch import save_file

    ckpt = load_checkpoint(ckpt_path)
    if ckpt.get("arch", "gpt") != "gpt":
        raise ValueError("only decoder-only (gpt) checkpoints export to transformers: no stock architecture "
                         "matches our encoder-decoder exactly")
    if "tokenizer_json" not in ckpt:
        raise KeyError(f"{ckpt_path} holds no tokenizer")
    model = build_model(ckpt, dropout=0.0, grad_checkpoint="none").eval()
    sd, config = (gpt2_state if model.cfg.pos == "learned" else neox_state)(model)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, not {dtype!r}")
    sd = {k: v.detach().to(DTYPES[dtype]).contiguous().clone() for k, v in sd.items()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    special = write_tokenizer(ckpt["tokenizer_json"], out, model.cfg.block_size)
    config.update(special, dtype=dtype, torch_dtype=dtype)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "generation_config.json").write_text(json.dumps(
        {k: v for k, v in special.items() if v is not None}, indent=2))
    meta = {"format": "pt", "manifest_hash": str(ckpt.get("manifest_hash")), "step": str(ckpt.get("step"))}
    shards = _shards(sd, int(max_shard_mb * 2**20))
    if len(shards) == 1:
        save_file(shards[0], str(out / "model.safetensors"), metadata=meta)
        files = ["model.safetensors"]
    else:
        files = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
        weight_map = {}
        for name, shard in zip(files, shards, strict=True):
            save_file(shard, str(out / name), metadata=meta)
            weight_map.update(dict.fromkeys(shard, name))
        total = sum(v.numel() * v.element_size() for v in sd.values())
        (out / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return {"architecture": config["architectures"][0], "out": str(out), "files": files,
            "parameters": model.num_params(), "dtype": dtype}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer export", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="a trainer checkpoint (ckpt.pt) of a gpt run")
    ap.add_argument("out", help="folder to write the Hugging Face model and tokenizer to")
    ap.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="dtype of the saved weights")
    ap.add_argument("--max-shard-mb", type=float, default=0, help="split the weights into shards of this size")
    a = ap.parse_args(argv)
    try:
        print(json.dumps(export(a.checkpoint, a.out, a.dtype, a.max_shard_mb), indent=2))
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
