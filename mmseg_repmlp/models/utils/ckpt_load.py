"""Load backbone weights from a file strictly, with errors that say what to do."""
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Type, Union

from torch import Tensor, nn

from ...utils.fileio import safe_torch_load
from .ckpt_convert import (
    convert_official,
    describe_arch,
    detect_layout,
    infer_arch,
    strip_prefix,
)


def extract_backbone_state(
        obj: Mapping,
        backbone_cls: Optional[Type[nn.Module]] = None) -> Dict[str, Tensor]:
    """Backbone weights from a released file, a converted file or a segmentor
    checkpoint (``state_dict`` with ``backbone.`` keys)."""
    if isinstance(obj, Mapping):
        for wrapper in ('state_dict', 'model'):
            if wrapper in obj and isinstance(obj[wrapper], Mapping):
                obj = obj[wrapper]
    if not isinstance(obj, Mapping):
        raise ValueError(f'Expected a state dict, got {type(obj).__name__}.')
    state = strip_prefix(obj, 'module.')
    if any(k.startswith('backbone.') for k in state):
        state = OrderedDict((k[len('backbone.'):], v)
                            for k, v in state.items()
                            if k.startswith('backbone.'))
    return convert_official(state, backbone_cls)


def load_backbone(model: nn.Module,
                  source: Union[str, Mapping],
                  map_location: str = 'cpu') -> None:
    """Load RepMLPNet weights into ``model`` strictly.

    Args:
        model (RepMLPNet): The backbone.
        source (str | Mapping): A file path, or an already loaded dict.
        map_location (str): Where to load tensors. Default: 'cpu'.

    Raises:
        ValueError: When the file holds another variant or another structure
            (training-time vs deploy); the message names both and the fix.
    """
    obj = safe_torch_load(source, map_location) if isinstance(source,
                                                              str) else source
    state = extract_backbone_state(obj, type(model))
    where = source if isinstance(source, str) else 'the given state dict'
    got_arch = infer_arch(state)
    want_arch = model.arch
    if (got_arch.channels, got_arch.depths, got_arch.window_sizes,
            got_arch.sharesets) != (want_arch.channels, want_arch.depths,
                                    want_arch.window_sizes,
                                    want_arch.sharesets):
        raise ValueError(
            f'{where} holds {describe_arch(got_arch)}, but the model is '
            f'{describe_arch(want_arch)}. Build the backbone with the '
            'matching arch (e.g. model.backbone.arch=...) or use the '
            'checkpoint of this variant.')
    layout = detect_layout(state)
    if (layout == 'deploy') != bool(model.deploy):
        want = 'deploy' if model.deploy else 'training-time'
        raise ValueError(
            f'{where} holds the {"deploy" if layout == "deploy" else "training-time"}'
            f' structure but the model is built in {want} form. '
            + ('Build it with deploy=True.' if layout == 'deploy' else
               'Build it with deploy=False, load, then call '
               'mmseg_repmlp.reparameterize_model.'))
    load_strict(model, state, where)


def load_strict(model: nn.Module, state_dict: Mapping,
                source: str) -> None:
    """``load_state_dict(strict=True)``, checked first: the error names the
    missing, unexpected and mis-shaped keys, and nothing is loaded."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model '
        f'{tuple(v.shape)}' for k, v in own.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        hint = ''
        if any('decode_head.conv_seg' in s for s in shapes):
            hint = (' The number of classes differs: set the config\'s '
                    'num_classes to match the checkpoint.')
        raise ValueError(
            f'{source} does not match the model '
            f'(nothing was loaded).{hint} Missing keys: {missing[:10]}'
            f'{" ..." if len(missing) > 10 else ""}; unexpected keys: '
            f'{unexpected[:10]}{" ..." if len(unexpected) > 10 else ""}; '
            f'shape mismatches: {shapes[:10]}.')
    # A model built on the meta device (cheap for the large variants) takes
    # the tensors themselves.
    on_meta = any(t.is_meta for t in own.values())
    model.load_state_dict(state_dict, strict=True, assign=on_meta)
