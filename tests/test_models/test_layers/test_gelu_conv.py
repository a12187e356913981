"""gelu_conv: conv(gelu(h)) saving h alone, with autograd's own gradients."""
import pytest
import torch
from torch import nn

from mmseg_repmlp.benchmark.timing import saved_for_backward_mb
from mmseg_repmlp.models.layers.gelu_conv import gelu_conv
from mmseg_repmlp.models.layers.repmlp_unit import FFNBlock


def _grads(fn, *tensors):
    out = fn()
    out.backward(torch.randn(out.shape, generator=torch.Generator()
                             .manual_seed(1)).to(out.dtype))
    grads = [t.grad.clone() for t in tensors]
    for t in tensors:
        t.grad = None
    return out.detach(), grads


@pytest.mark.parametrize('dtype', [None, torch.bfloat16])
@pytest.mark.parametrize('bias,approximate', [(False, 'none'),
                                              (True, 'tanh')])
def test_same_outputs_and_gradients_as_autograd(dtype, bias, approximate):
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 4, 1, bias=bias)
    act = nn.GELU(approximate=approximate)
    h = torch.randn(2, 16, 5, 7, requires_grad=True)
    params = [h, *conv.parameters()]

    def run(fused):
        with torch.autocast('cpu', dtype=dtype or torch.bfloat16,
                            enabled=dtype is not None):
            return gelu_conv(h, act, conv) if fused else conv(act(h))

    ref, ref_grads = _grads(lambda: run(False), *params)
    out, grads = _grads(lambda: run(True), *params)
    assert out.dtype == ref.dtype == (dtype or torch.float32)
    assert torch.equal(out, ref)
    for got, want in zip(grads, ref_grads, strict=True):
        assert got.dtype == want.dtype and torch.equal(got, want)


def test_keeps_the_gelu_input_only():
    conv = nn.Conv2d(64, 16, 1, bias=False)
    h = torch.randn(2, 64, 8, 8, requires_grad=True)
    weights = list(conv.parameters())
    plain = saved_for_backward_mb(lambda: conv(nn.GELU()(h)), weights)
    fused = saved_for_backward_mb(lambda: gelu_conv(h, nn.GELU(), conv),
                                  weights)
    # Plain autograd keeps h (GELU) and gelu(h) (the convolution's input);
    # the fused op h alone.
    assert plain == 2 * fused == 2 * h.numel() * 4 / 2**20


def test_ffn_block_uses_it_in_training_only():
    torch.manual_seed(0)
    ffn = FFNBlock(8, 32).train()
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    calls = []
    handle = ffn.act.register_forward_hook(lambda *args: calls.append(1))
    out = ffn(x)
    assert not calls  # the fused op ran, not the GELU module
    with torch.no_grad():
        ffn(x)
    assert calls == [1]
    handle.remove()
    # The training forward is the plain one (batch statistics and all).
    torch.manual_seed(0)
    plain = FFNBlock(8, 32).train()
    with torch.no_grad():
        ref = plain.ffn_fc2(plain.act(plain.ffn_fc1(x)))
    assert torch.equal(out.detach(), ref)


def test_unsupported_padding_is_refused():
    conv = nn.Conv2d(4, 4, 3, padding='same')
    with pytest.raises(ValueError, match='numeric zero padding'):
        gelu_conv(torch.randn(1, 4, 5, 5), nn.GELU(), conv)
