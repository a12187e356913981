"""The deploy form's fused inference path (RepMLPBlock.forward_residual and
the shareset-major window layout) against the plain path it replaces.

Random non-trivial weights and BN statistics, float64, several rows and
columns of windows, one and several sharesets, contiguous and
channels-last maps, a map that needs padding, and bf16 autocast.
"""
import copy

import pytest
import torch
from torch.testing import assert_close

from mmseg_repmlp.models.layers import RepMLPNetUnit
from mmseg_repmlp.models.layers.repmlp_block import RepMLPBlock
from mmseg_repmlp.models.layers.window import (
    merge_by_shareset,
    partition_by_shareset,
    window_partition,
    window_reverse,
)
from mmseg_repmlp.models.utils.reparameterize import reparameterize_modules

from ...conftest import NORM_CFG, randomize_

LAYOUTS = [torch.contiguous_format, torch.channels_last]


@pytest.mark.parametrize('memory_format', LAYOUTS)
@pytest.mark.parametrize('shape,window,sharesets', [
    ((2, 8, 12, 16), (4, 4), 2),   # 3 x 4 windows
    ((1, 6, 9, 20), (3, 5), 3),    # non-square windows
    ((2, 4, 8, 15), (4, 3), 1),    # one shareset
])
def test_shareset_layout_is_the_partition_reordered(shape, window, sharesets,
                                                    memory_format):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64).contiguous(
        memory_format=memory_format)
    channels = shape[1]
    scale = torch.rand(channels, dtype=torch.float64) + 0.5
    shift = torch.randn(channels, dtype=torch.float64)
    y = x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)
    plain = window_partition(y, window, sharesets)  # (B, S, h, w)
    windows = partition_by_shareset(x, window, sharesets, scale, shift)
    assert windows.is_contiguous()
    assert windows.shape == (sharesets, plain.shape[0], window[0] * window[1])
    assert_close(windows, plain.flatten(2).transpose(0, 1))
    # Without the affine map: a pure reordering.
    assert torch.equal(
        partition_by_shareset(x, window, sharesets),
        window_partition(x, window, sharesets).flatten(2).transpose(0, 1))
    gate = torch.rand(shape[0], channels, 1, 1, dtype=torch.float64)
    out = merge_by_shareset(windows, window, x, gate)
    assert out.is_contiguous(memory_format=memory_format)
    assert_close(out, x + window_reverse(plain, y.shape) * gate)


def test_partition_writes_the_dtype_asked():
    x = torch.randn(1, 4, 4, 4)
    out = partition_by_shareset(x, (2, 2), 2, torch.ones(4), torch.zeros(4),
                                dtype=torch.bfloat16)
    assert out.dtype == torch.bfloat16
    assert_close(out.float(), partition_by_shareset(x, (2, 2), 2),
                 rtol=1e-2, atol=1e-2)


def deploy_unit(channels, window, sharesets, seed=0):
    """A unit re-parameterized from random training weights and BN
    statistics, float64, eval mode."""
    torch.manual_seed(seed)
    unit = RepMLPNetUnit(channels, window, sharesets, norm_cfg=NORM_CFG)
    randomize_(unit, seed)
    with torch.no_grad():
        for name, param in unit.named_parameters():
            if 'bn' not in name:
                param.normal_(0, 0.5)
    return reparameterize_modules(unit.double().eval())


@pytest.fixture
def calls(monkeypatch):
    """One entry per call of the fused path
    (``RepMLPBlock.forward_residual``), which still runs."""
    recorded = []
    fused = RepMLPBlock.forward_residual
    monkeypatch.setattr(RepMLPBlock, 'forward_residual',
                        lambda self, *a: recorded.append(1) or fused(self, *a))
    return recorded


def plain(unit):
    off = copy.deepcopy(unit)
    off.fused_inference = False
    return off


@pytest.mark.parametrize('memory_format', LAYOUTS)
@pytest.mark.parametrize('size,window,channels,sharesets', [
    ((12, 16), (4, 4), 8, 2),    # 3 x 4 windows
    ((8, 8), (4, 4), 8, 8),      # 2 x 2 windows, one channel per group
    ((9, 20), (3, 5), 6, 3),     # non-square windows
    ((8, 15), (4, 3), 4, 1),     # one shareset (addmm)
    ((10, 19), (3, 5), 6, 3),    # padded: the plain path
])
def test_fused_unit_equals_the_plain_unit(size, window, channels, sharesets,
                                          memory_format, calls):
    unit = deploy_unit(channels, window, sharesets)
    x = torch.randn(2, channels, *size, dtype=torch.float64).contiguous(
        memory_format=memory_format)
    with torch.no_grad():
        got = unit(x)
        ref = plain(unit)(x)
    assert calls, 'the fused path was not taken'
    assert got.is_contiguous(memory_format=memory_format)
    assert_close(got, ref, rtol=1e-10, atol=1e-10)


def test_fused_unit_under_bf16_autocast_is_as_close_as_the_plain_one():
    unit = deploy_unit(16, (4, 4), 4).float()
    unit.fused_inference = True  # 'auto' would not take it under autocast
    x = torch.randn(1, 16, 8, 12)
    with torch.no_grad():
        exact = plain(unit)(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            got = unit(x)
            ref = plain(unit)(x)
    assert got.dtype == ref.dtype
    err_fused = (got.float() - exact).abs().max()
    err_plain = (ref.float() - exact).abs().max()
    assert err_fused <= 2 * err_plain + 1e-6


def test_auto_takes_the_fused_path_except_under_cpu_autocast(calls):
    """The default: fused in fp32, plain under CPU autocast (where the
    fused block's strided passes were measured slower); True and False
    force either (the ablation times both)."""
    unit = deploy_unit(8, (4, 4), 2).float()
    assert unit.fused_inference == 'auto'
    x = torch.randn(1, 8, 8, 8)

    def fused_calls(mode, autocast):
        unit.fused_inference = mode
        calls.clear()
        with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16,
                                             enabled=autocast):
            unit(x)
        return len(calls)

    assert fused_calls('auto', autocast=False) == 1
    assert fused_calls('auto', autocast=True) == 0
    assert fused_calls(True, autocast=True) == 1
    assert fused_calls(False, autocast=False) == 0


def test_plain_path_where_autograd_records_or_the_form_trains():
    """With autograd on, prebn1's parameters get their gradients (the fused
    path reads them as constants); a training-mode prebn1 uses batch
    statistics, which the fused path cannot."""
    unit = deploy_unit(8, (4, 4), 2)
    x = torch.randn(1, 8, 8, 8, dtype=torch.float64)
    called = []
    unit.repmlp_block.forward_residual = lambda *a: called.append(1)
    unit(x).sum().backward()
    assert unit.prebn1.weight.grad is not None
    assert unit.prebn1.weight.grad.abs().sum() > 0
    unit.train()
    with torch.no_grad():
        unit(x)
    assert not called


def test_training_form_never_takes_it():
    torch.manual_seed(0)
    unit = RepMLPNetUnit(8, (4, 4), 2).eval()
    with torch.no_grad():
        assert not unit._fuses(torch.randn(1, 8, 8, 8))
    with pytest.raises(RuntimeError, match='deploy form'):
        unit.repmlp_block.forward_residual(torch.randn(1, 8, 8, 8),
                                           unit.prebn1)


def test_prebn1_changed_in_place_is_read_again():
    """The fused path keeps prebn1's affine map between calls: a change of
    its statistics or parameters (load_state_dict copies in place) must
    reach the next call."""
    unit = deploy_unit(8, (4, 4), 2)
    x = torch.randn(1, 8, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        unit(x)
        for name in ('running_var', 'running_mean', 'weight', 'bias'):
            getattr(unit.prebn1, name).mul_(1.5).add_(0.1)
            assert_close(unit(x), plain(unit)(x), rtol=1e-10, atol=1e-10)
        unit.prebn1.eps = 0.5
        assert_close(unit(x), plain(unit)(x), rtol=1e-10, atol=1e-10)
