"""ONNX export of a deployed RepMLPNet segmentor (see ``docs/export.md``)."""
import copy
import json
import os
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..utils.compare import DEFAULT_THRESHOLD
from ..utils.fileio import atomic_path, refuse_to_overwrite
from ..version import __version__
from .check import (
    ToolkitLabels,
    agreement_shapes,
    check_image,
    check_onnx,
    format_agreement,
    format_check,
    second_check_shape,
    toolkit_agreement,
)
from .exportable import make_exportable
from .runtime import ort_session, require_onnx
from .trace_shape import padded_trace_shape, resized_trace_shape
from .wrapper import (
    OnnxSegmentor,
    PipelineResize,
    default_label_dtype,
    pipeline_resize,
)

# 17: every current runtime reads it (onnxruntime >= 1.12, TensorRT >= 8.5,
# OpenVINO); dynamic Pad/Slice/Resize need 11.
DEFAULT_OPSET = 17
MIN_OPSET = 11
MAX_OPSET = 20  # the TorchScript exporter's newest opset in torch 2.13
INPUT_NAME = 'image'
#: Fewest pixels, per size, that must get the toolkit's label.
DEFAULT_MIN_AGREEMENT = 0.999

#: The ``metadata_props`` of every exported file: key -> what the value is.
#: The one place the schema is written down: :func:`model_metadata` fills
#: exactly these keys, and the docs and the doc string list them from here.
METADATA_SCHEMA = {
    'mmseg_repmlp.version': 'version of mmseg_repmlp that wrote the file',
    'classes': 'JSON list of the class names, label i is classes[i]',
    'palette': 'JSON list of [R, G, B] colours, one per class',
    'palette_order': "'RGB': channel order of the palette colours",
    'num_classes': 'number of classes (the size of the logits class axis)',
    'input_name': 'name of the graph input',
    'input_layout': "'NCHW'",
    'input_channel_order': "'BGR' (as cv2.imread gives images)",
    'input_range': "'0..255': raw pixels (uint8 values as float32)",
    'input_dtype': "'float32'",
    'bgr_to_rgb': 'JSON bool: the graph converts BGR to RGB before '
                  'normalizing',
    'mean': 'JSON list: per-channel mean subtracted in the graph, in the '
            'channel order after the BGR to RGB conversion',
    'std': 'JSON list: per-channel std divided by in the graph, same order',
    'normalization_in_graph': "'true': feed raw pixels, not normalized ones",
    'test_scale': "JSON [W, H] of the config's test-time Resize, or null "
                  'when it has none',
    'keep_ratio': "JSON bool of that Resize (rescale within test_scale), or "
                  'null',
    'resize_in_graph': "JSON bool: the graph resizes to test_scale itself; "
                       'if false and test_scale is set, resize first as '
                       'MMCV does',
    'align_corners': 'JSON bool of the bilinear logits resizes',
    'output': "'logits' (N, num_classes, H, W) or 'labels' (N, H, W)",
    'label_dtype': 'dtype of a labels output; for logits, the smallest one '
                   'that holds the class ids',
    'label_rule': "'argmax' over the class axis, or 'sigmoid>T' for a "
                  'single-class head',
    'dynamic': 'JSON bool: batch, height and width are free',
    'opset': 'ONNX opset of the graph',
}


def _json(value) -> str:
    return json.dumps(value, separators=(', ', ': '))


def _floats(values: torch.Tensor, length: int) -> List[float]:
    """float32 values as the shortest decimals that read back the same
    (123.675, not 123.67500305175781)."""
    return [float(str(np.float32(v))) for v in
            values.flatten().expand(length).tolist()]


def model_metadata(model: nn.Module,
                   output: str,
                   label_dtype: str,
                   opset: int,
                   dynamic: bool,
                   resize: Optional[PipelineResize] = None,
                   test_resize: Optional[PipelineResize] = None
                   ) -> Dict[str, str]:
    """The :data:`METADATA_SCHEMA` values for a graph of ``model``.

    Args:
        model (nn.Module): The deployed segmentor (``dataset_meta`` gives the
            classes and palette; null without it).
        output (str): ``'logits'`` or ``'labels'``.
        label_dtype (str): See :class:`OnnxSegmentor`.
        opset (int): The graph's opset.
        dynamic (bool): Whether batch, height and width are free.
        resize (PipelineResize, optional): The resize inside the graph.
        test_resize (PipelineResize, optional): The config's test-time
            resize, inside the graph or not. Default: ``resize``.

    Returns:
        dict[str, str]: Exactly the keys of :data:`METADATA_SCHEMA`.
    """
    test_resize = test_resize or resize
    head = model.decode_head
    meta = getattr(model, 'dataset_meta', None) or {}
    wrapper = OnnxSegmentor(model, output, label_dtype, resize)
    channels = 3
    threshold = (DEFAULT_THRESHOLD if wrapper.threshold is None else
                 wrapper.threshold)
    palette = meta.get('palette')
    values = {
        'mmseg_repmlp.version': __version__,
        'classes': _json(list(meta['classes']) if meta.get('classes')
                         else None),
        'palette': _json([[int(c) for c in colour] for colour in palette]
                         if palette else None),
        'palette_order': 'RGB',
        'num_classes': str(head.out_channels),
        'input_name': INPUT_NAME,
        'input_layout': 'NCHW',
        'input_channel_order': 'BGR',
        'input_range': '0..255',
        'input_dtype': 'float32',
        'bgr_to_rgb': _json(wrapper.bgr_to_rgb),
        'mean': _json(_floats(wrapper.mean, channels)),
        'std': _json(_floats(wrapper.std, channels)),
        'normalization_in_graph': 'true',
        'test_scale': _json(list(test_resize.scale) if test_resize else None),
        'keep_ratio': _json(test_resize.keep_ratio if test_resize else None),
        'resize_in_graph': _json(resize is not None),
        'align_corners': _json(wrapper.align_corners),
        'output': output,
        'label_dtype': label_dtype,
        'label_rule': ('argmax' if head.out_channels > 1 else
                       f'sigmoid>{threshold:g}'),
        'dynamic': _json(dynamic),
        'opset': str(opset),
    }
    assert values.keys() == METADATA_SCHEMA.keys()  # one schema
    return values


def describe(metadata: Dict[str, str]) -> str:
    """The human-readable ``doc_string`` of a file with ``metadata``."""
    classes = json.loads(metadata['classes'] or 'null')
    scale = json.loads(metadata['test_scale'])
    if json.loads(metadata['resize_in_graph']):
        resize = (f'The graph resizes the image as the config does (Resize '
                  f'to {scale} (W, H), keep_ratio '
                  f'{metadata["keep_ratio"]}, OpenCV bilinear), runs the '
                  'model and resizes the logits back: labels equal to '
                  "mmseg_repmlp.apis.inference_model's for any image size.")
    elif scale:
        resize = (f'The graph runs the model at the input size; the toolkit '
                  f'first resizes to {scale} (W, H), keep_ratio '
                  f'{metadata["keep_ratio"]}: do that before, for its '
                  'labels.')
    else:
        resize = 'The graph runs the model at the input size, as the config.'
    out = ('logits (N, num_classes, H, W) float32 at the input size'
           if metadata['output'] == 'logits' else
           f'labels (N, H, W) {metadata["label_dtype"]} at the input size')
    return (
        f'RepMLPNet segmentor exported by mmseg_repmlp '
        f'{metadata["mmseg_repmlp.version"]} (opset {metadata["opset"]}). '
        f'Input "{metadata["input_name"]}": float32 (N, 3, H, W), N, H, W '
        '>= 1, raw BGR pixels 0..255 (cv2.imread order, not normalized: '
        f'BGR to RGB, mean {metadata["mean"]} and std {metadata["std"]} are '
        f'in the graph). {resize} Output "{metadata["output"]}": {out} '
        f'({metadata["label_rule"]}). {metadata["num_classes"]} classes'
        + (f': {", ".join(classes)}' if classes else '') +
        '; class names and RGB palette are in metadata_props (keys: '
        + ', '.join(METADATA_SCHEMA) + ').')


def _set_dims(value_info, dims: Sequence) -> None:
    """Name (str) or fix (int) every axis of a graph input or output."""
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for dim in dims:
        entry = shape.dim.add()
        if isinstance(dim, str):
            entry.dim_param = dim
        else:
            entry.dim_value = int(dim)


def write_metadata(path: str, metadata: Dict[str, str],
                   output_dims: Sequence) -> None:
    """Write ``metadata`` (``metadata_props`` and ``doc_string``) and the
    output's axes into the ONNX file ``path``."""
    onnx, _ = require_onnx()
    model = onnx.load(path)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, metadata)
    model.doc_string = describe(metadata)
    _set_dims(model.graph.output[0], output_dims)
    onnx.save(model, path)


def read_metadata(path: str) -> Dict[str, str]:
    """``metadata_props`` of an ONNX file, as a dict (no torch needed:
    ``onnx.load(path).metadata_props``)."""
    onnx, _ = require_onnx()
    model = onnx.load(path, load_external_data=False)
    return {prop.key: prop.value for prop in model.metadata_props}


def trace_to_onnx(module: nn.Module, example: torch.Tensor, path: str,
                  input_names: Sequence[str],
                  output_names: Optional[Sequence[str]] = None,
                  opset: int = DEFAULT_OPSET,
                  dynamic_axes: Optional[dict] = None) -> None:
    """``torch.onnx.export`` with the TorchScript exporter, as every graph
    of this project is written: traced on ``example`` without gradients,
    constants folded, and without the exporter's deprecation notice and
    the tracer warnings for the shape branches :func:`padded_trace_shape`
    takes care of."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', message='.*align_corners.*')
        torch.onnx.export(
            module, (example, ),
            path,
            dynamo=False,
            input_names=list(input_names),
            output_names=list(output_names) if output_names else None,
            opset_version=opset,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True)


def export_onnx(model: nn.Module,
                path: str,
                shape: Tuple[int, int],
                dynamic: bool = False,
                output: str = 'logits',
                opset: int = DEFAULT_OPSET,
                label_dtype: Optional[str] = None,
                resize: Optional[PipelineResize] = None,
                test_resize: Optional[PipelineResize] = None,
                unfold_local_perceptron: bool = False
                ) -> Tuple[int, int]:
    """Write ``model`` (a deployed segmentor, left unchanged) to ``path``.

    Without ``dynamic`` the graph takes ``(1, 3, H, W)`` images of
    ``shape``. With it, batch, height and width are dynamic
    (``batch``, ``height``, ``width``); the graph is then traced at
    :func:`padded_trace_shape` (at :func:`resized_trace_shape` with a
    ``resize``). The output's class axis has the fixed size of the classes.
    The file carries :func:`model_metadata`. No check is made here: see
    :func:`check_onnx` and :func:`export_segmentor`.

    Args:
        resize (PipelineResize, optional): The test-time resize to put in
            the graph (:func:`pipeline_resize`); None: the model runs at
            the input size. Default: None.
        test_resize (PipelineResize, optional): The config's test-time
            resize, for the metadata of a graph without one.
        unfold_local_perceptron (bool): Write each RepMLP block's window FC
            as two parts (see :class:`UnfoldedRepMLPBlock`), the form INT8
            quantization needs. Default: False.

    Returns:
        tuple[int, int]: The size the graph was traced at.
    """
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f'opset must be in [{MIN_OPSET}, {MAX_OPSET}] '
                         f'(dynamic Pad/Resize need {MIN_OPSET}; the '
                         f'TorchScript exporter stops at {MAX_OPSET}); got '
                         f'{opset}.')
    num_classes = model.decode_head.out_channels
    label_dtype = label_dtype or default_label_dtype(num_classes)
    if not dynamic:
        trace_shape = tuple(shape)
    elif resize is None:
        trace_shape = padded_trace_shape(model, shape)
    else:
        trace_shape = resized_trace_shape(model, resize, shape)
    metadata = model_metadata(model, output, label_dtype, opset, dynamic,
                              resize, test_resize)
    model = make_exportable(copy.deepcopy(model).cpu().eval(),
                            unfold_local_perceptron)
    wrapper = OnnxSegmentor(model, output, label_dtype, resize).eval()
    dummy = torch.rand(1, 3, *trace_shape) * 255
    batch, height, width = (('batch', 'height', 'width') if dynamic else
                            (1, *trace_shape))
    output_dims = ([batch, num_classes, height, width]
                   if output == 'logits' else [batch, height, width])
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {
            INPUT_NAME: {0: 'batch', 2: 'height', 3: 'width'},
            output: {i: d for i, d in enumerate(output_dims)
                     if isinstance(d, str)}
        }
    trace_to_onnx(wrapper, dummy, path, [INPUT_NAME], [output], opset,
                  dynamic_axes)
    write_metadata(path, metadata, output_dims)
    return trace_shape


def _test_resizes(model: nn.Module, native_resolution: bool
                  ) -> Tuple[Optional[PipelineResize],
                             Optional[PipelineResize], bool]:
    """``(resize in the graph, the config's resize, whether the graph
    reproduces the toolkit)``."""
    cfg = getattr(model, 'cfg', None)
    if cfg is None:
        if native_resolution:
            return None, None, False
        raise ValueError('The model has no config (model.cfg), so its '
                         'test-time resize is unknown: build it with '
                         'mmseg_repmlp.apis.init_model, or export with '
                         '--native-resolution.')
    if not native_resolution:
        resize = pipeline_resize(cfg)
        return resize, resize, True
    try:
        test_resize = pipeline_resize(cfg)
    except ValueError:  # a pipeline the graph could not reproduce anyway
        return None, None, False
    return None, test_resize, test_resize is None


def export_segmentor(model: nn.Module,
                     out: str,
                     shape: Tuple[int, int],
                     dynamic: bool = False,
                     output: str = 'logits',
                     opset: int = DEFAULT_OPSET,
                     image: Optional[str] = None,
                     tolerance: float = 1e-4,
                     force: bool = False,
                     label_dtype: Optional[str] = None,
                     log: Callable[[str], None] = print,
                     native_resolution: bool = False,
                     toolkit: Optional[ToolkitLabels] = None,
                     agreement_at: Optional[Sequence[Tuple[int, int]]] = None,
                     min_agreement: float = DEFAULT_MIN_AGREEMENT,
                     unfold_local_perceptron: bool = False
                     ) -> Dict[str, List[Dict[str, object]]]:
    """Export, check and atomically write ``out``.

    The config's test-time resize goes into the graph (not with
    ``native_resolution``). ``image`` is read first, so a bad one is
    reported before anything is exported. The graph is written to a
    temporary file beside ``out``, checked with ``onnx.checker`` and
    compared with PyTorch in onnxruntime on ``image`` (random pixels if
    None) resized to ``shape``; with ``dynamic`` also on a batch of 2 at
    :func:`second_check_shape`. With ``toolkit`` its labels are compared
    with the graph's at each size of ``agreement_at`` (default: ``shape``
    for a fixed graph, :func:`agreement_shapes` for a dynamic one) and the
    agreement is logged. Only a graph that passes replaces ``out``.

    Args:
        toolkit (ToolkitLabels, optional): The toolkit's labels (the CLI
            passes ``mmseg_repmlp.apis.inference_model``'s).
        min_agreement (float): Fewest pixels per size that must get the
            toolkit's label, unless ``native_resolution`` (where the toolkit
            resizes and the graph does not, the agreement is only logged).
        unfold_local_perceptron (bool): See :func:`export_onnx`; the check
            against PyTorch then also checks the unfolded form.

    Returns:
        dict: ``checks`` (:func:`check_onnx` results) and ``agreement``
        (:func:`toolkit_agreement` results).

    Raises:
        FileExistsError: ``out`` exists and not ``force``.
        RuntimeError: The graph does not reproduce the model, or gives
            another label than the toolkit too often.
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
    resize, test_resize, like_toolkit = _test_resizes(model,
                                                      native_resolution)
    source = image if image is not None else 'random image'
    img = check_image(image, shape)  # before the export: fails fast
    if agreement_at is None:
        agreement_at = (agreement_shapes(test_resize) if dynamic else
                        [shape])
    threshold = getattr(model.decode_head, 'threshold', None)
    with atomic_path(out) as tmp:
        trace_shape = export_onnx(model, tmp, shape, dynamic, output, opset,
                                  label_dtype, resize, test_resize,
                                  unfold_local_perceptron)
        onnx.checker.check_model(tmp)
        kind = ('dynamic batch, height, width; traced at'
                if dynamic else 'fixed')
        inside = ('test-time resize to {} in the graph'.format(
            list(resize.scale)) if resize else 'no resize in the graph')
        log(f'Exported ({kind} {trace_shape[0]}x{trace_shape[1]}, opset '
            f'{opset}, output {output}, {inside}); onnx.checker passed.')
        session = ort_session(tmp)
        checks = [[img]]
        if dynamic:
            img2 = check_image(image, second_check_shape(shape))
            checks.append([img2, np.ascontiguousarray(img2[:, ::-1])])
        results = []
        for images in checks:
            result = check_onnx(model, tmp, images, tolerance, session,
                                resize)
            log(format_check(result, source, tolerance))
            results.append(result)
        agreement = []
        for size in (agreement_at if toolkit else []):
            result = toolkit_agreement(session, check_image(image, size),
                                       toolkit, threshold, tolerance)
            log(format_agreement(result, source) + (
                '' if like_toolkit else ' (native resolution: the toolkit '
                'resizes to the test scale first)'))
            agreement.append(result)
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
        low = [r for r in agreement
               if like_toolkit and r['equal_fraction'] < min_agreement]
        if low:
            raise RuntimeError(
                'The ONNX model gives the toolkit\'s labels on fewer than '
                f'{100 * min_agreement:g} % of the pixels at '
                + ', '.join('{}x{}'.format(*r['shape']) for r in low) +
                '; nothing was written.')
    log(f'ONNX model written to {out}')
    return dict(checks=results, agreement=agreement)
