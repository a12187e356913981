"""Locality Injection for whole models: the one entry point.

:func:`reparameterize_model` turns any model holding RepMLPNet parts (the
backbone alone, or a whole MMSegmentation segmentor) into its deploy form. The
hook, the tools and the inference API all go through it.
"""
import copy

import torch
from torch import nn

from .models.utils.reparameterize import reparameterize_modules


def is_deployed(model: nn.Module) -> bool:
    """Whether no module of ``model`` still has a training-time structure."""
    return not any(
        getattr(m, 'deploy', True) is False for m in model.modules()
        if hasattr(m, 'reparameterize'))


@torch.no_grad()
def reparameterize_model(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Return ``model`` with every re-parameterizable module in deploy form.

    Every module folds its own branches, children first
    (:func:`~mmseg_repmlp.models.utils.reparameterize.reparameterize_modules`).
    Calling it on a deployed model changes nothing. The training mode is kept; the
    conversion uses BatchNorm running statistics whatever the mode.

    Args:
        model (nn.Module): Backbone or segmentor.
        inplace (bool): Convert ``model`` itself instead of a deep copy.
            Default: False.

    Returns:
        nn.Module: The deploy model.
    """
    if not inplace:
        model = copy.deepcopy(model)
    return reparameterize_modules(model)
