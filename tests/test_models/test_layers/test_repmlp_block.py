"""RepMLPBlock against the paper reference (plain loops, no shared code).

Both forms of the block, training-time and re-parameterized, must equal
:func:`~tests.test_models.paper_reference.reference_block` on several rows
and columns of windows, with random weights and BN statistics, in float64.
"""
import copy

import pytest
import torch
from torch.testing import assert_close

from mmseg_repmlp.models.layers import RepMLPBlock

from ...conftest import BN_EPS, NORM_CFG, randomize_
from ..paper_reference import reference_block, reference_fc3


def random_block(channels, window, sharesets, kernels=(1, 3), seed=0):
    """A training-time block in eval mode, float64, with random weights
    (fc3 and every conv well away from identity) and BN statistics."""
    torch.manual_seed(seed)
    block = RepMLPBlock(channels, window, sharesets, kernels=kernels,
                        norm_cfg=NORM_CFG)
    randomize_(block, seed).double().eval()
    with torch.no_grad():
        for param in block.parameters():
            param.normal_(0, 0.5)
    return block


def assert_block_matches_reference(block, x):
    """Both forms of ``block`` against the reference computed from the
    training-time weights."""
    ref = reference_block(block, x)
    scale = ref.abs().max()
    with torch.no_grad():
        assert_close(block(x) / scale, ref / scale, rtol=1e-10, atol=1e-10)
        deployed = copy.deepcopy(block)
        deployed.reparameterize()
        assert deployed.deploy and not hasattr(deployed, 'fc3_bn')
        assert_close(deployed(x) / scale, ref / scale, rtol=1e-10,
                     atol=1e-10)


@pytest.mark.parametrize('size,window,channels,sharesets', [
    ((12, 16), (4, 4), 8, 2),    # 3 x 4 windows
    ((12, 12), (4, 4), 8, 4),    # 3 x 3 windows (nH == nW)
    ((9, 20), (3, 5), 8, 4),     # 3 x 4 non-square windows
    ((10, 19), (3, 5), 6, 3),    # 4 x 4 windows, padded on both sides
    ((8, 15), (4, 3), 4, 1),     # 2 x 5 windows, one shareset (F.linear)
])
def test_block_equals_the_paper_reference(size, window, channels, sharesets):
    block = random_block(channels, window, sharesets)
    x = torch.randn(2, channels, *size, dtype=torch.float64)
    assert_block_matches_reference(block, x)


@pytest.mark.parametrize('kernels,window,size', [
    ((3, 5), (4, 4), (12, 16)),
    ((), (4, 4), (12, 16)),
    ((5, ), (2, 2), (6, 8)),         # kernel larger than the window
    ((1, 3, 5, 7), (2, 3), (6, 12)),
])
def test_local_perceptron_kernels_equal_the_reference(kernels, window, size):
    block = random_block(8, window, 2, kernels=kernels)
    x = torch.randn(2, 8, *size, dtype=torch.float64)
    assert_block_matches_reference(block, x)


@pytest.mark.parametrize('kernels,window', [((1, 3), (4, 3)),
                                             ((5, ), (2, 2))])
def test_folded_fc3_is_the_affine_map_of_the_branches(kernels, window):
    """The deploy fc3 (weight and bias) is the per-shareset affine map
    that the reference's training-time branches compute."""
    block = random_block(6, window, 3, kernels=kernels)
    weight, bias = reference_fc3(block)
    deployed = copy.deepcopy(block)
    deployed.reparameterize()
    assert_close(deployed.fc3.weight, weight, rtol=1e-10, atol=1e-10)
    assert_close(deployed.fc3.bias, bias, rtol=1e-10, atol=1e-10)


def test_eps_matters_at_these_statistics():
    """Sanity of the set-up: eps is far from 1e-5, and a fold that dropped
    it would move the output far beyond the tolerance above."""
    block = random_block(8, (4, 4), 2)
    x = torch.randn(2, 8, 12, 16, dtype=torch.float64)
    no_eps = copy.deepcopy(block)
    for module in no_eps.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert module.eps == BN_EPS
            module.eps = 0.0
    ref = reference_block(block, x)
    moved = (reference_block(no_eps, x) - ref).abs().max() / ref.abs().max()
    assert moved > 1e-3


@pytest.mark.parametrize('kernels,message', [
    ((3, 3), 'distinct'),  # one repconv3: the branch would count twice
    ((-1, ), 'positive and odd'),
    ((2, ), 'positive and odd'),
])
def test_kernels_it_cannot_fold_are_refused(kernels, message):
    with pytest.raises(ValueError, match=message):
        RepMLPBlock(4, (2, 2), 2, kernels=kernels)
