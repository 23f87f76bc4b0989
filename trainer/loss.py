"""Fused linear + cross-entropy: the mean loss of ``h @ w.T`` without ever holding all the logits.

The output head's logits are computed chunk by chunk; each chunk's gradient is computed in the forward
pass and kept, so the (N, V) logits are never all in memory at once and never stored for backward (the
idea of fused linear cross-entropy kernels). ``ce_chunk`` is the per-chunk kernel that the model
compiles on the GPU.
"""

from __future__ import annotations

import torch


def ce_chunk(logits: torch.Tensor, targets: torch.Tensor, scale: torch.Tensor):
    """Summed cross-entropy of one chunk of logits (n, V), and its gradient times scale (as logits' dtype).

    Targets < 0 contribute neither loss nor gradient. Written as a reduction plus one pointwise pass
    (the one-hot is a comparison with an index ramp, not a scatter), so compiled on the GPU it reads the
    logits for the log-sum-exp, reads them once more and writes the gradient once.
    """
    lf = logits.to(torch.promote_types(logits.dtype, torch.float32))
    lse = torch.logsumexp(lf, dim=-1)
    ok = targets >= 0
    t = targets.clamp(min=0)
    loss = ((lse - lf.gather(1, t[:, None]).squeeze(1)) * ok).sum()
    onehot = torch.arange(lf.shape[1], device=lf.device)[None, :] == t[:, None]
    g = (torch.exp(lf - lse[:, None]) - onehot.to(lf.dtype)) * (ok.to(lf.dtype) * scale)[:, None]
    return loss, g.to(logits.dtype)


class _FusedLinearCE(torch.autograd.Function):
    """Mean cross-entropy of (h @ w.T) against targets, computed chunk by chunk.

    The gradients are computed in the forward pass, so the (N, V) logits are never all in memory at
    once and never stored for backward (the idea of fused linear cross-entropy kernels).
    """

    @staticmethod
    def forward(ctx, h, w, targets, chunk, dtype, chunk_fn):
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        hc_all, wc = h.to(dtype), w.to(dtype)
        valid = (targets >= 0).sum().clamp(min=1)
        scale = 1.0 / valid.to(torch.promote_types(dtype, torch.float32))
        loss = torch.zeros((), dtype=scale.dtype, device=h.device)
        gh = torch.empty_like(hc_all) if need_h else None
        gw = torch.zeros(w.shape, dtype=torch.promote_types(w.dtype, torch.float32),
                         device=w.device) if need_w else None
        for s in range(0, h.shape[0], chunk):
            hc = hc_all[s:s + chunk]
            loss_c, g = chunk_fn(hc @ wc.t(), targets[s:s + chunk], scale)
            loss = loss + loss_c
            if need_h:
                gh[s:s + chunk] = g @ wc
            if need_w:
                gw += (g.t() @ hc).to(gw.dtype)
        ctx.save_for_backward(gh if need_h else torch.empty(0), gw if need_w else torch.empty(0))
        ctx.need, ctx.dtypes = (need_h, need_w), (h.dtype, w.dtype)
        return loss * scale

    @staticmethod
    def backward(ctx, grad_out):
        gh, gw = ctx.saved_tensors
        (need_h, need_w), (h_dtype, w_dtype) = ctx.need, ctx.dtypes
        dh = (gh * grad_out.to(gh.dtype)).to(h_dtype) if need_h else None
        dw = (gw * grad_out).to(w_dtype) if need_w else None
        return dh, dw, None, None, None, None


@torch.compiler.disable
def fused_linear_cross_entropy(h: torch.Tensor, w: torch.Tensor, targets: torch.Tensor,
                               chunk: int = 8192, chunk_fn=ce_chunk) -> torch.Tensor:
    """Mean CE of logits h @ w.T (h: (N, C), w: (V, C), targets: (N,)); see _FusedLinearCE.

    Under autocast the matmuls run in the autocast dtype; the gradient of w comes back in w's dtype.
    """
    dtype = h.dtype
    if torch.is_autocast_enabled(h.device.type):
        dtype = torch.get_autocast_dtype(h.device.type)
    with torch.autocast(h.device.type, enabled=False):
        return _FusedLinearCE.apply(h, w, targets, chunk, dtype, chunk_fn)


