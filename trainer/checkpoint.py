"""Checkpoint files: atomic save, load, and a model + tokenizer ready for inference.

A checkpoint is one ``torch.save`` dict: ``model`` (the full state dict, also after FSDP training),
``model_config``, ``arch`` (``gpt`` or ``encdec``; absent in older files: ``gpt``), ``task`` (the
training task: window length, and for span corruption its parameters and sentinel ids),
``train_config``, ``optimizer``, ``scheduler``, ``step``, ``data_position``, ``rng`` (per rank),
``parallel``, ``manifest_hash``, ``tokenizer_hash`` and ``tokenizer_json`` (the tokenizer itself, so a
checkpoint file stands alone).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from tokenizers import Tokenizer

from trainer.model import GPT, GPTConfig
from trainer.seq2seq import EncDecConfig, EncoderDecoder


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write state to path through a temporary file and a rename (never half a checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    # our own files: they hold numpy / python RNG states, which weights_only refuses
    return torch.load(path, map_location=map_location, weights_only=False)


def make_model(arch: str, config: dict) -> GPT | EncoderDecoder:
    """A freshly initialised model of an architecture ('gpt' or 'encdec') from its config dict."""
    if arch == "gpt":
        return GPT(GPTConfig(**config))
    if arch == "encdec":
        return EncoderDecoder(EncDecConfig(**config))
    raise ValueError(f"unknown architecture {arch!r}: expected 'gpt' or 'encdec'")


def build_model(ckpt: dict, **overrides) -> GPT | EncoderDecoder:
    """The checkpoint's model (its config with overrides applied) with its weights."""
    model = make_model(ckpt.get("arch", "gpt"), {**ckpt["model_config"], **overrides})
    model.load_state_dict(ckpt["model"])
    return model


def load_for_inference(path: str | Path, device: torch.device) -> tuple[GPT | EncoderDecoder, Tokenizer, dict]:
    ckpt = load_checkpoint(path)
    if "tokenizer_json" not in ckpt:
        raise KeyError(f"{path} holds no tokenizer")
    model = build_model(ckpt, dropout=0.0, grad_checkpoint="none").to(device).eval()
    return model, Tokenizer.from_str(ckpt["tokenizer_json"]), ckpt
