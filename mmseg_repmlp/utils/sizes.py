"""The input size a segmentor is checked at when none is given."""
from typing import Tuple, Union

from mmengine.config import Config
from torch import nn

#: Used when the config's data preprocessor has no fixed size.
DEFAULT_CHECK_SIZE = (512, 512)


def check_size(cfg_or_model: Union[Config, nn.Module]) -> Tuple[int, int]:
    """``(H, W)`` to compare two forms of a model at by default.

    The data preprocessor's ``size`` (the training crop the model was made
    for), else :data:`DEFAULT_CHECK_SIZE`. Re-parameterization (hook and
    ``tools/reparam.py``) and ONNX export all check at this size, so one
    config gives one size everywhere.

    Args:
        cfg_or_model (Config | nn.Module): A full config, or a segmentor from
            :func:`init_model` (which keeps its config as ``model.cfg``).
    """
    cfg = cfg_or_model.cfg if isinstance(cfg_or_model, nn.Module) else \
        cfg_or_model
    size = cfg.model.get('data_preprocessor', {}).get('size')
    return tuple(int(s) for s in size) if size else DEFAULT_CHECK_SIZE
