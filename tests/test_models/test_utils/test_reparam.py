import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from mmseg_repmlp.models.utils import reparam

from ...conftest import BN_EPS, randomize_


def _bn(channels, seed=0):
    return randomize_(nn.BatchNorm2d(channels, eps=BN_EPS), seed).eval()


def test_bn_to_affine_matches_eval_bn():
    bn = _bn(5)
    x = torch.randn(2, 5, 3, 4)
    scale, shift = reparam.bn_to_affine(bn)
    assert_close(x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1), bn(x))


def test_bn_without_stats_is_refused():
    with pytest.raises(ValueError, match='running statistics'):
        reparam.bn_to_affine(nn.BatchNorm2d(3, track_running_stats=False))


@pytest.mark.parametrize('groups,bias', [(1, False), (3, True)])
def test_fuse_conv_bn(groups, bias):
    conv = nn.Conv2d(6, 9, 3, padding=1, groups=groups, bias=bias)
    bn = _bn(9)
    x = torch.randn(2, 6, 7, 5)
    w, b = reparam.fuse_conv_bn(conv.weight, conv.bias, bn)
    assert_close(F.conv2d(x, w, b, padding=1, groups=groups), bn(conv(x)),
                 rtol=1e-5, atol=1e-5)


def test_fuse_fc_bn_per_shareset():
    s, n = 3, 6
    fc = nn.Conv2d(s * n, s * n, 1, groups=s, bias=False)
    bn = _bn(s)
    x = torch.randn(4, s * n, 1, 1)
    ref = bn(fc(x).reshape(4, s, 2, 3)).reshape(4, s * n, 1, 1)
    w, b = reparam.fuse_fc_bn_per_shareset(fc.weight, None, bn)
    assert_close(F.conv2d(x, w, b, groups=s), ref, rtol=1e-5, atol=1e-5)


def test_pad_kernel_keeps_the_convolution():
    k = torch.randn(4, 1, 1, 1)
    x = torch.randn(1, 4, 5, 5)
    assert_close(F.conv2d(x, reparam.pad_kernel(k, (3, 3)), padding=1,
                          groups=4), F.conv2d(x, k, groups=4))
    with pytest.raises(ValueError):
        reparam.pad_kernel(torch.randn(1, 1, 3, 3), (4, 4))


@pytest.mark.parametrize('window', [(4, 4), (3, 5)])
def test_depthwise_conv_to_fc(window):
    s, (h, w) = 3, window
    kernel, bias = torch.randn(s, 1, 3, 3), torch.randn(s)
    x = torch.randn(7, s, h, w)
    ref = F.conv2d(x, kernel, bias, padding=1, groups=s)
    fc, fc_bias = reparam.depthwise_conv_to_fc(kernel, bias, window)
    assert fc.shape == (s * h * w, h * w, 1, 1)
    out = F.conv2d(x.reshape(7, -1, 1, 1), fc, fc_bias, groups=s)
    assert_close(out.reshape(ref.shape), ref, rtol=1e-5, atol=1e-5)


def test_fold_affine_into_pointwise_conv():
    conv = nn.Conv2d(5, 7, 1, bias=True)
    scale, shift = torch.rand(5) + 0.5, torch.randn(5)
    x = torch.randn(2, 5, 3, 3)
    w, b = reparam.fold_affine_into_pointwise_conv(conv.weight, conv.bias,
                                                   scale, shift)
    ref = conv(x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1))
    assert_close(F.conv2d(x, w, b), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='1x1'):
        reparam.fold_affine_into_pointwise_conv(
            torch.randn(7, 5, 3, 3), None, scale, shift)
