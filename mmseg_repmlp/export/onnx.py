"""ONNX export of a deployed RepMLPNet segmentor (see ``docs/export.md``)."""
import copy
import os
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..utils.fileio import atomic_path, refuse_to_overwrite
from .check import check_image, check_onnx, format_check, second_check_shape
from .exportable import make_exportable
from .runtime import ort_session, require_onnx
from .trace_shape import padded_trace_shape
from .wrapper import OnnxSegmentor

# 17: every current runtime reads it (onnxruntime >= 1.12, TensorRT >= 8.5,
# OpenVINO); dynamic Pad/Slice/Resize need 11.
DEFAULT_OPSET = 17
MIN_OPSET = 11
MAX_OPSET = 20  # the TorchScript exporter's newest opset in torch 2.13
INPUT_NAME = 'image'


def export_onnx(model: nn.Module,
                path: str,
                shape: Tuple[int, int],
                dynamic: bool = False,
                output: str = 'logits',
                opset: int = DEFAULT_OPSET,
                label_dtype: str = 'int64') -> Tuple[int, int]:
    """Write ``model`` (a deployed segmentor, left unchanged) to ``path``.

    Without ``dynamic`` the graph takes ``(1, 3, H, W)`` images of
    ``shape``. With it, batch, height and width are dynamic
    (``batch``, ``height``, ``width``); the graph is then traced at
    :func:`padded_trace_shape`. No check is made here: see
    :func:`check_onnx` and :func:`export_segmentor`.

    Returns:
        tuple[int, int]: The size the graph was traced at.
    """
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f'opset must be in [{MIN_OPSET}, {MAX_OPSET}] '
                         f'(dynamic Pad/Resize need {MIN_OPSET}; the '
                         f'TorchScript exporter stops at {MAX_OPSET}); got '
                         f'{opset}.')
    trace_shape = padded_trace_shape(model, shape) if dynamic else tuple(shape)
    model = make_exportable(copy.deepcopy(model).cpu().eval())
    wrapper = OnnxSegmentor(model, output, label_dtype).eval()
    dummy = torch.rand(1, 3, *trace_shape) * 255
    dynamic_axes = None
    if dynamic:
        axes = {0: 'batch', 1: None, 2: 'height', 3: 'width'}
        out_axes = ({0: 'batch', 2: 'height', 3: 'width'} if output ==
                    'logits' else {0: 'batch', 1: 'height', 2: 'width'})
        dynamic_axes = {
            INPUT_NAME: {k: v for k, v in axes.items() if v},
            output: out_axes
        }
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter's deprecation notice, and tracer warnings
        # for the shape branches padded_trace_shape takes care of.
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', message='.*align_corners.*')
        torch.onnx.export(
            wrapper, (dummy, ),
            path,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[output],
            opset_version=opset,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True)
    return trace_shape


def export_segmentor(model: nn.Module,
                     out: str,
                     shape: Tuple[int, int],
                     dynamic: bool = False,
                     output: str = 'logits',
                     opset: int = DEFAULT_OPSET,
                     image: Optional[str] = None,
                     tolerance: float = 1e-4,
                     force: bool = False,
                     label_dtype: str = 'int64',
                     log=print) -> List[Dict[str, object]]:
    """Export, check and atomically write ``out``.

    The graph is written to a temporary file beside ``out``, checked with
    ``onnx.checker`` and compared with PyTorch in onnxruntime on ``image``
    (random pixels if None) resized to ``shape``; with ``dynamic`` also on a
    batch of 2 at :func:`second_check_shape`. Only a graph that passes
    replaces ``out``.

    Raises:
        FileExistsError: ``out`` exists and not ``force``.
        RuntimeError: The graph does not reproduce the model.
    """
    onnx, _ = require_onnx()
    out = os.fspath(out)
    refuse_to_overwrite(out, force)
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f'Directory {directory!r} does not exist; '
                                'create it first.')
    shape = tuple(int(s) for s in shape)
    if min(shape) < 1:
        raise ValueError(f'Invalid shape {shape}.')
    with atomic_path(out) as tmp:
        trace_shape = export_onnx(model, tmp, shape, dynamic, output, opset,
                                  label_dtype)
        onnx.checker.check_model(tmp)
        kind = ('dynamic batch, height, width; traced at'
                if dynamic else 'fixed')
        log(f'Exported ({kind} {trace_shape[0]}x{trace_shape[1]}, opset '
            f'{opset}, output '
            f'{output}); onnx.checker passed.')
        source = image if image is not None else 'random image'
        img = check_image(image, shape)
        session = ort_session(tmp)
        checks = [([img], shape)]
        if dynamic:
            second = second_check_shape(shape)
            img2 = check_image(image, second)
            checks.append(([img2, np.ascontiguousarray(img2[:, ::-1])],
                           second))
        results = []
        for images, _ in checks:
            result = check_onnx(model, tmp, images, tolerance, session)
            log(format_check(result, source, tolerance))
            results.append(result)
        del session
        bad = [r for r in results if not r['ok']]
        if bad:
            hint = ('; the dynamic graph does not generalise: export the '
                    'size you need without --dynamic' if dynamic and
                    results[0]['ok'] else '')
            raise RuntimeError(
                'The ONNX model does not reproduce the PyTorch model at '
                + ', '.join('{}x{}'.format(*r['shape']) for r in bad) +
                f'{hint}; nothing was written.')
    log(f'ONNX model written to {out}')
    return results
