"""Byte-level BPE tokenizer (Hugging Face ``tokenizers``): train, save, load, hash.

Every document is followed by the end-of-text token ``EOT`` when packed, so the model sees document
boundaries. A tokenizer file given by the user (any ``tokenizer.json``) is used as is; it must contain
the EOT token (or name its own with ``eot``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

EOT = "<|endoftext|>"
PAD = "<|pad|>"


def train_tokenizer(texts: Iterable[str], vocab_size: int, path: str | Path,
                    min_frequency: int = 2) -> Tokenizer:
    """Train a byte-level BPE on texts (an iterator of documents) and save it to path (JSON)."""
    if vocab_size < 256 + 2:
        raise ValueError(f"vocab_size {vocab_size} is smaller than the 256 bytes + 2 special tokens")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOT, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_batches(texts), trainer=trainer)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return tok


def _batches(texts: Iterable[str], n: int = 1000) -> Iterator[list[str]]:
    buf: list[str] = []
    for t in texts:
        buf.append(t)
        if len(buf) == n:
            yield buf
            buf = []
    if buf:
        yield buf


def load_tokenizer(path: str | Path) -> Tokenizer:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    return Tokenizer.from_file(str(path))


def eot_id(tok: Tokenizer, eot: str = EOT) -> int:
    """Id of the document-boundary token; a clear error when the tokenizer lacks it."""
    i = tok.token_to_id(eot)
    if i is None:
        raise ValueError(f"tokenizer has no document-boundary token {eot!r}")
    return i


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes (tokenizer hash, manifest hash)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
