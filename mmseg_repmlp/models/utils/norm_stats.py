"""Random BatchNorm statistics, for checking re-parameterization.

Freshly built models have BatchNorm weight 1, bias 0, mean 0 and var 1, which
make a wrong fold look right; equivalence checks (tests, the benchmark) give
every BatchNorm random values first.
"""
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def randomize_norm_stats_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm random affine parameters and statistics, in place."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            c = module.num_features
            module.weight.copy_(torch.rand(c, generator=gen) + 0.5)
            module.bias.copy_(torch.randn(c, generator=gen) * 0.2)
            module.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
            module.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
    return model
