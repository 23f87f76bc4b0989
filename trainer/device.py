"""Device helpers: which device, the autocast context for it, the SDPA kernel choice."""

from __future__ import annotations

from contextlib import nullcontext

import torch


def pick_device(name: str = "auto") -> torch.device:
    """'auto': the first GPU when there is one, else the CPU."""
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


def autocast_for(device: torch.device, dtype: str = "auto"):
    """bf16 autocast on CUDA (dtype 'auto' or 'bfloat16'), nothing otherwise."""
    if device.type == "cuda" and dtype in ("auto", "bfloat16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def sdpa_context(name: str):
    """A context choosing the SDPA kernel, or nothing for 'auto'."""
    if name == "auto":
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
    if name not in backends:
        raise ValueError(f"sdpa_backend must be auto or one of {sorted(backends)}, not {name!r}")
    return sdpa_kernel(backends[name])


def use_tf32(device: torch.device) -> None:
    """TF32 matmuls and convolutions on CUDA (float32 work that autocast leaves alone)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
