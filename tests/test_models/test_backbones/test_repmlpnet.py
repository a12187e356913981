import math

import pytest
import torch
from mmseg.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

import mmseg_repmlp  # noqa: F401  (registers the backbone)
from mmseg_repmlp.models import ARCHS, RepMLPNet

from ...conftest import TINY_ARCH, TINY_RECT_ARCH

#: FACTS: backbone parameters of the training-time structure (no classifier).
RELEASED_PARAMS = {
    'T224': 37_779_584,
    'B224': 67_472_176,
    'T256': 58_173_824,
    'B256': 95_676_976,
    'D256': 86_245_368,
    'L256': 116_871_024,
}


@pytest.mark.parametrize('name', sorted(RELEASED_PARAMS))
def test_released_variant_parameter_counts(name):
    with torch.device('meta'):
        model = RepMLPNet(name)
    assert sum(p.numel() for p in model.parameters()) == RELEASED_PARAMS[name]
    assert model.out_channels == ARCHS[name].channels


def test_variant_table_is_the_released_one():
    assert set(ARCHS) == set(RELEASED_PARAMS)
    assert ARCHS['L256'].sharesets == (1, 4, 32, 256)
    assert ARCHS['T224'].window_sizes == ((56, 56), (28, 28), (14, 14), (7, 7))


def test_unknown_arch_lists_valid_names():
    with pytest.raises(KeyError, match='T224, B224, T256, B256, D256, L256'):
        RepMLPNet('X256')


@pytest.mark.parametrize('bad', [
    dict(TINY_ARCH, sharesets=(3, 4, 8, 16)),
    dict(TINY_ARCH, depths=(1, 1, 1)),
    dict(TINY_ARCH, kernels=(2, )),
])
def test_bad_arch_dict(bad):
    with pytest.raises(ValueError):
        RepMLPNet(bad)


def test_built_from_registry():
    model = MODELS.build(dict(type='RepMLPNet', arch=TINY_ARCH))
    assert isinstance(model, RepMLPNet)


@pytest.mark.parametrize('arch', [TINY_ARCH, TINY_RECT_ARCH])
@pytest.mark.parametrize('size', [(64, 128), (96, 64), (500, 333), (31, 63),
                                  (1, 1), (33, 4)])
def test_features_any_size(arch, size):
    torch.manual_seed(0)
    model = RepMLPNet(arch).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, *size))
    assert len(feats) == 4
    for feat, stride, ch in zip(feats, (4, 8, 16, 32), arch['channels']):
        assert feat.shape == (1, ch, math.ceil(size[0] / stride),
                              math.ceil(size[1] / stride))
        assert torch.isfinite(feat).all()


def test_out_indices_and_negative_index():
    model = RepMLPNet(TINY_ARCH, out_indices=(1, -1)).eval()
    feats = model(torch.randn(2, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [16, 64]
    assert model.out_channels == (16, 64)
    with pytest.raises(ValueError, match='out_indices'):
        RepMLPNet(TINY_ARCH, out_indices=(4, ))


def test_padding_zero_fills_windows_and_gate_sees_real_map_only():
    """A 5x7 map in 8x8 windows: the window FC sees the map zero-padded, and
    the Global Perceptron gate comes from the 5x7 map alone."""
    torch.manual_seed(0)
    block = RepMLPNet(TINY_ARCH).stages[0][0].repmlp_block.eval()
    x = torch.randn(2, 8, 5, 7)
    padded = torch.nn.functional.pad(x, (0, 1, 0, 3))
    with torch.no_grad():
        expected = (block(padded) / block.gp(padded))[..., :5, :7] * block.gp(x)
        torch.testing.assert_close(block(x), expected)
        assert not torch.allclose(block.gp(x), block.gp(padded))


def test_backward_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = RepMLPNet(TINY_ARCH).train()
    # Per-image offsets: the Global Perceptron sees per-image means, which a
    # batch-normalised input of near-identical images would make ~0.
    x = torch.randn(4, 3, 64, 96) + 3 * torch.randn(4, 3, 1, 1)
    feats = model(x)
    sum(f.square().mean() for f in feats).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


def test_with_cp_gives_same_gradients():
    torch.manual_seed(0)
    model = RepMLPNet(TINY_ARCH).train()
    model_cp = RepMLPNet(TINY_ARCH, with_cp=True).train()
    model_cp.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    for m in (model, model_cp):
        sum(f.sum() for f in m(x)).backward()
    for (name, p), p_cp in zip(model.named_parameters(),
                               model_cp.parameters()):
        torch.testing.assert_close(p.grad, p_cp.grad, rtol=1e-4, atol=1e-5,
                                   msg=name)


def test_frozen_stages():
    model = RepMLPNet(TINY_ARCH, frozen_stages=2)
    model.train()
    frozen = [model.conv_embedding, model.stages[0], model.embeds[0],
              model.stages[1]]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    for module in (model.embeds[1], model.stages[2], model.stages[3]):
        assert all(p.requires_grad for p in module.parameters())
        assert all(m.training for m in module.modules())
    stem_only = RepMLPNet(TINY_ARCH, frozen_stages=0)
    assert not any(p.requires_grad
                   for p in stem_only.conv_embedding.parameters())
    assert all(p.requires_grad for p in stem_only.stages[0].parameters())


def test_norm_eval():
    model = RepMLPNet(TINY_ARCH, norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    assert model.training


def test_sync_bn_norm_cfg():
    model = RepMLPNet(TINY_ARCH, norm_cfg=dict(type='SyncBN'))
    assert isinstance(model.stages[0][0].prebn1, torch.nn.SyncBatchNorm)
    assert isinstance(model.stages[0][0].repmlp_block.fc3_bn,
                      torch.nn.SyncBatchNorm)


def test_requires_grad_false_in_norm_cfg():
    model = RepMLPNet(
        TINY_ARCH, norm_cfg=dict(type='BN', requires_grad=False))
    assert not model.stages[0][0].prebn1.weight.requires_grad
