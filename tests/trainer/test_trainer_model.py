"""trainer.model: shapes, causality, the fused loss against the plain one, freezing, FLOPs."""

from __future__ import annotations

import pytest
import torch

from trainer.loss import ce_chunk, fused_linear_cross_entropy
from trainer.model import GPT, GPTConfig, preset


def tiny(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(preset("tiny", vocab_size=97, block_size=16, **kw)).eval()


@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_logit_shape_and_padded_vocab(pos):
    m = tiny(pos=pos)
    assert m.wte.weight.shape[0] == 128  # 97 rounded up to a multiple of 128
    x = torch.randint(0, 97, (3, 16))
    assert m(x).shape == (3, 16, 97)
    assert m(x[:, :5]).shape == (3, 5, 97)
    with pytest.raises(ValueError, match="block_size"):
        m(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_future_tokens_never_change_past_logits(pos):
    m = tiny(pos=pos)
    x = torch.randint(0, 97, (2, 16))
    y = x.clone()
    y[:, 9:] = torch.randint(0, 97, (2, 7))
    with torch.no_grad():
        a, b = m(x), m(y)
    assert torch.equal(a[:, :9], b[:, :9])
    assert not torch.allclose(a[:, 9:], b[:, 9:])


def test_rope_positions_matter():
    """With rotary positions a permuted prefix gives different logits at the last position."""
    m = tiny(pos="rope")
    x = torch.arange(10)[None]
    with torch.no_grad():
        a = m(x)[0, -1]
        b = m(torch.cat([x[:, 1:9].flip(1), x[:, :1], x[:, 9:]], 1))[0, -1]
    assert not torch.allclose(a, b)


def test_weight_tying_and_gpt2_init():
    m = GPT(preset("mini", vocab_size=500, block_size=32))
    assert m.lm_head.weight is m.wte.weight
    std = m.blocks[0].mlp.c_proj.weight.std().item()
    assert abs(std - 0.02 / (2 * 4) ** 0.5) < 0.002
    assert abs(m.blocks[0].mlp.c_fc.weight.std().item() - 0.02) < 0.002


@pytest.mark.parametrize("chunk", [7, 64, 1000])
def test_fused_loss_matches_plain_in_float64(chunk):
    torch.manual_seed(1)
    h = torch.randn(50, 12, dtype=torch.float64, requires_grad=True)
    w = torch.randn(30, 12, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 30, (50,))
    t[[3, 17, 40]] = -1  # ignored positions
    ref = torch.nn.functional.cross_entropy(h @ w.t(), t, ignore_index=-1)
    gh, gw = torch.autograd.grad(ref * 3.0, (h, w))
    got = fused_linear_cross_entropy(h, w, t, chunk)
    fh, fw = torch.autograd.grad(got * 3.0, (h, w))
    assert abs(got.item() - ref.item()) < 1e-12
    assert torch.allclose(fh, gh, atol=1e-12) and torch.allclose(fw, gw, atol=1e-12)


def test_model_fused_and_plain_losses_agree():
    a, b = tiny(loss_impl="plain"), tiny(loss_impl="fused", loss_chunk=10)
    b.load_state_dict(a.state_dict())
    x, y = torch.randint(0, 97, (2, 16)), torch.randint(0, 97, (2, 16))
    la, lb = a(x, y), b(x, y)
    la.backward()
    lb.backward()
    assert abs(la.item() - lb.item()) < 1e-5
    for pa_, pb_ in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa_.grad, pb_.grad, atol=1e-6)


def test_ce_chunk_gradient_rows_sum_to_zero():
    logits = torch.randn(5, 11, dtype=torch.float64)
    loss, g = ce_chunk(logits, torch.tensor([1, 2, -1, 4, 10]), torch.tensor(0.25, dtype=torch.float64))
    assert torch.allclose(g.sum(1), torch.zeros(5, dtype=torch.float64), atol=1e-12)
    assert torch.equal(g[2], torch.zeros(11, dtype=torch.float64))


def test_freeze_bottom_marks_embeddings_and_first_blocks():
    m = GPT(preset("mini", vocab_size=100, block_size=16))
    names = m.freeze_bottom(2)
    assert "wte.weight" in names and "wpe.weight" in names
    assert all(not p.requires_grad for p in m.blocks[1].parameters())
    assert all(p.requires_grad for p in m.blocks[2].parameters())
    with pytest.raises(ValueError):
        m.freeze_bottom(5)


def test_124m_size_and_flops():
    cfg = preset("124M")
    with torch.device("meta"):
        m = GPT(cfg)
    n = m.num_params(non_embedding=True)
    assert n == 12 * (12 * 768 * 768 + 13 * 768) + 2 * 768  # blocks + final norm
    assert m.flops_per_token(1024) == 6 * (n + 50257 * 768) + 12 * 12 * 768 * 1024


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="multiple of n_head"):
        GPTConfig(n_embd=100, n_head=3)
    with pytest.raises(ValueError, match="pos"):
        GPTConfig(pos="sinusoid")
    with pytest.raises(ValueError, match="preset"):
        preset("1T")


def test_large_presets_have_the_published_sizes():
    with torch.device("meta"):
        m13, m27 = GPT(preset("1.3B", bias=False)), GPT(preset("2.7B", bias=False))
    assert (m13.cfg.n_layer, m13.cfg.n_embd, m13.cfg.n_head) == (24, 2048, 16)
    assert 1.2e9 < m13.num_params() < 1.45e9
    assert (m27.cfg.n_layer, m27.cfg.n_embd, m27.cfg.n_head) == (32, 2560, 32)
    assert 2.5e9 < m27.num_params() < 2.8e9


class _OpLog(torch.utils._python_dispatch.TorchDispatchMode):
    """Counts the aten ops run while active."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func.overloadpacket.__name__))
        return func(*args, **(kwargs or {}))


def _backward_ops(mode: str) -> tuple[list[str], list[torch.Tensor]]:
    torch.manual_seed(0)
    m = GPT(preset("tiny", vocab_size=97, block_size=16, grad_checkpoint=mode, loss_impl="plain")).train()
    x, y = torch.randint(0, 97, (2, 16)), torch.randint(0, 97, (2, 16))
    loss = m(x, y)
    with _OpLog() as log:
        loss.backward()
    return log.ops, [p.grad for p in m.parameters()]


def test_selective_checkpointing_recomputes_attention_but_no_matmul():
    none_ops, g_none = _backward_ops("none")
    sel_ops, g_sel = _backward_ops("selective")
    full_ops, g_full = _backward_ops("full")
    for g in (g_sel, g_full):
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_none, g, strict=True))
    mm = {"mm", "addmm", "bmm"}
    count = lambda ops, names: sum(o in names for o in ops)  # noqa: E731
    assert count(sel_ops, mm) == count(none_ops, mm)  # no matmul recomputed
    assert count(full_ops, mm) > count(none_ops, mm)  # full recomputes the forward's matmuls
    attn = {o for o in none_ops if "scaled_dot_product" in o and "backward" not in o}
    assert not attn  # without checkpointing the backward runs no attention forward
    fwd_attn = lambda ops: sum("scaled_dot_product" in o and "backward" not in o for o in ops)  # noqa: E731
    assert fwd_attn(sel_ops) == 2 and fwd_attn(full_ops) == 2  # one recomputed attention per block
    assert count(sel_ops, {"native_layer_norm"}) == 4  # the two norms of each block recomputed


def test_checkpoint_modes_accept_the_old_booleans():
    assert GPTConfig(grad_checkpoint=True).grad_checkpoint == "full"
    assert GPTConfig(grad_checkpoint=False).grad_checkpoint == "none"
    with pytest.raises(ValueError, match="grad_checkpoint"):
        GPTConfig(grad_checkpoint="some")
