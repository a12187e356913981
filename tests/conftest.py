import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

#: Small architectures that keep every structural feature of the released
#: ones (several sharesets, the Local Perceptron, four stages) at test size.
TINY_ARCH = dict(
    channels=(8, 16, 32, 64),
    depths=(1, 2, 1, 1),
    window_sizes=(8, 4, 2, 2),
    sharesets=(2, 4, 8, 16))
#: Non-square windows and a single-shareset stage.
TINY_RECT_ARCH = dict(
    channels=(8, 16, 16, 32),
    depths=(1, 1, 1, 1),
    window_sizes=((4, 6), (2, 4), (3, 2), (2, 2)),
    sharesets=(1, 2, 4, 8))


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights and BatchNorm statistics: default statistics (mean 0,
    var 1, weight 1, bias 0) hide fusion bugs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _BatchNorm):
                c = module.num_features
                module.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(c, generator=gen) * 0.2)
                module.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
                module.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
    return model


@pytest.fixture
def tiny_arch():
    return dict(TINY_ARCH)
