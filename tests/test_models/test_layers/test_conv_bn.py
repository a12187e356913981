"""ConvBN.forward_tiled: the same conv-BN, one depthwise conv over tiles."""
import pytest
import torch
from torch.testing import assert_close

from mmseg_repmlp.models.layers.conv_bn import ConvBN

from ...conftest import NORM_CFG, randomize_


@pytest.mark.parametrize('channels,tiles', [(1, 6), (4, 3), (8, 1)])
@pytest.mark.parametrize('kernel', [1, 3])
@pytest.mark.parametrize('training', [True, False])
def test_tiled_equals_plain_values_and_gradients(channels, tiles, kernel,
                                                 training):
    torch.manual_seed(0)
    layer = randomize_(ConvBN(channels, channels, kernel, padding=kernel // 2,
                              groups=channels, norm_cfg=NORM_CFG)
                       ).train(training)
    # Distinct BN statistics so that a wrong channel order shows.
    x = torch.randn(2 * tiles, channels, 5, 7, requires_grad=True)
    ref = layer(x)
    grads_ref = torch.autograd.grad(ref.square().sum(),
                                    [x, *layer.parameters()])
    out = layer.forward_tiled(x, tiles)
    grads = torch.autograd.grad(out.square().sum(), [x, *layer.parameters()])
    assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for g, g_ref in zip(grads, grads_ref):
        assert_close(g, g_ref, rtol=1e-4, atol=1e-5)
    layer.eval().reparameterize()
    with torch.no_grad():
        assert_close(layer.forward_tiled(x, tiles), layer(x), rtol=1e-5,
                     atol=1e-6)


def test_tiled_needs_a_depthwise_conv_and_whole_tiles():
    with pytest.raises(ValueError, match='depthwise'):
        ConvBN(4, 4, 3, padding=1).forward_tiled(torch.randn(2, 4, 5, 5), 2)
    with pytest.raises(ValueError, match='dividing'):
        ConvBN(4, 4, 3, padding=1, groups=4).forward_tiled(
            torch.randn(3, 4, 5, 5), 2)
