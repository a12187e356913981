"""The one walker that turns a model's re-parameterizable parts into deploy form.

Every re-parameterizable module (``ConvBN``, ``RepMLPBlock``,
``RepMLPNetUnit``) has the same contract: ``reparameterize()`` folds its own
training-time branches, is safe to call twice, and sets ``deploy = True``. A
module that folds into a child (``prebn2`` into ``ffn_fc1``) reads the child
through the child's public fused form, so the order below (children first) is
the only place that decides who goes when.
"""
import torch
from torch import nn


@torch.no_grad()
def reparameterize_modules(model: nn.Module) -> nn.Module:
    """Call ``reparameterize()`` on every module of ``model``, children
    first, in place; return ``model``."""
    for module in reversed(list(model.modules())):
        reparameterize = getattr(module, 'reparameterize', None)
        if callable(reparameterize):
            reparameterize()
    return model
