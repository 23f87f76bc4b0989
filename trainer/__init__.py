"""GPT trainer attached to the curator's output: tokenizer, packed token shards, model, training loop.

Imports only torch, numpy, pyarrow, tokenizers (and optionally tensorboard/matplotlib); Ray is imported
only inside ``trainer.ray_train``.
"""
