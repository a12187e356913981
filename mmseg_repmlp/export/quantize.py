"""INT8 post-training quantization of an OpenVINO IR with NNCF, and the
per-layer report of its error.

The recipe (measured on RepMLPNet-B256 at 512x1024, see
``docs/cpu_engines.md``):

* the graph is exported with each window FC in two parts
  (:class:`~.exportable.UnfoldedRepMLPBlock`): folded into ``fc3``, the
  Local Perceptron makes a few entries of every weight row large, and the
  row's INT8 step with them;
* ``ModelType.TRANSFORMER``: the CNN default also quantizes the residual
  adds and the Global Perceptron's gate;
* SmoothQuant on convolutions only, no bias correction;
* in float: the window FCs of stages 1 to 3, the Local Perceptron's
  depthwise convolutions, the downsampling convolutions and the Global
  Perceptron (:func:`int8_ignored_names`).
"""
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.compare import logits_to_labels, reference_scale
from .ir import compile_ir, require_openvino, run_ir

#: SmoothQuant alpha of convolutions (matmuls: off).
SMOOTH_QUANT_CONV_ALPHA = 0.15
#: Stages whose window FCs stay in float.
FLOAT_WINDOW_FC_STAGES = (1, 2, 3)

# Operation names of an exported RepMLPNet segmentor, as OpenVINO gives them
# (the ONNX node names: module paths, '/backbone/stages.1.0/repmlp_block/
# MatMul', and a suffix such as '/WithoutBiases' after conversion).
_UNIT = re.compile(r'(.*/backbone/stages\.(\d+)\.\d+)/')
_WINDOW_FC = re.compile(
    r'.*/backbone/stages\.(\d+)\.\d+/repmlp_block/(MatMul|Gemm)(_\d+)?'
    r'(/.*)?$')
_LOCAL_CONV = re.compile(
    r'.*/backbone/stages\.\d+\.\d+/repmlp_block/Conv(_\d+)?(/.*)?$')
_DOWNSAMPLE = re.compile(r'.*/backbone/embeds\.\d+/.*')
# The Global Perceptron's two 1x1 convolutions on the pooled (N, C, 1, 1)
# vector: no time to gain, and quantized (SmoothQuant scale after the ReLU,
# INT8 fc2) they crashed OpenVINO 2026.4's CPU plugin (segmentation fault)
# for some weights of the demo model.
_GLOBAL_PERCEPTRON = re.compile(
    r'.*/backbone/stages\.\d+\.\d+/repmlp_block/gp/.*')
# ExportableAdaptiveAvgPool2d: pooling written as matrix products.
_POOLING = re.compile(r'.*/psp_modules[^ ]*/MatMul(_\d+)?(/.*)?$')
_COMPUTE = ('Convolution', 'GroupConvolution', 'MatMul')


def require_nncf():
    """The ``nncf`` module, or an ImportError saying how to install it."""
    try:
        import nncf
    except ImportError as err:
        raise ImportError(
            f'INT8 export needs nncf ({err}); install it with '
            "`pip install '.[openvino]'` or `pip install -r "
            'requirements/openvino.txt`.') from None
    return nncf


def int8_ignored_names(model,
                       float_window_fc_stages: Sequence[int] = (
                           FLOAT_WINDOW_FC_STAGES)) -> List[str]:
    """Names of the operations of ``model`` (an ``openvino.Model`` of an
    exported RepMLPNet) kept in float: the window FCs of
    ``float_window_fc_stages``, the Local Perceptron's depthwise
    convolutions, the downsampling convolutions, the Global Perceptron's
    convolutions, and the pooling matrices of the exported pyramid
    pooling."""
    names = []
    for op in model.get_ops():
        if op.get_type_name() not in _COMPUTE:
            continue
        name = op.get_friendly_name()
        fc = _WINDOW_FC.match(name)
        if ((fc and int(fc.group(1)) in float_window_fc_stages)
                or _LOCAL_CONV.match(name) or _DOWNSAMPLE.match(name)
                or _GLOBAL_PERCEPTRON.match(name) or _POOLING.match(name)):
            names.append(name)
    return names


def _recipe(model, ignored_names: Optional[Sequence[str]],
            smooth_quant_conv_alpha: float, model_type: str,
            bias_correction: bool) -> Dict[str, object]:
    """The keyword arguments of ``nncf.quantize`` (and of its
    accuracy-controlled form) that make up the recipe."""
    nncf = require_nncf()
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )
    if ignored_names is None:
        ignored_names = int8_ignored_names(model)
    return dict(
        model_type=(nncf.ModelType.TRANSFORMER if model_type == 'transformer'
                    else None),
        ignored_scope=nncf.IgnoredScope(names=list(ignored_names),
                                        validate=False),
        advanced_quantization_parameters=AdvancedQuantizationParameters(
            disable_bias_correction=not bias_correction,
            smooth_quant_alphas=AdvancedSmoothQuantParameters(
                convolution=smooth_quant_conv_alpha, matmul=-1)))


def quantize_int8(model,
                  calibration: Sequence[np.ndarray],
                  ignored_names: Optional[Sequence[str]] = None,
                  smooth_quant_conv_alpha: float = SMOOTH_QUANT_CONV_ALPHA,
                  model_type: str = 'transformer',
                  bias_correction: bool = False):
    """``nncf.quantize`` of an ``openvino.Model`` with the recipe above.

    Args:
        model (openvino.Model): The fp32 model (left unchanged).
        calibration (Sequence[np.ndarray]): Input batches (each
            ``(1, 3, H, W)`` float32), all used.
        ignored_names (Sequence[str], optional): Operations kept in float;
            default: :func:`int8_ignored_names`.
        smooth_quant_conv_alpha (float): SmoothQuant alpha of convolutions
            (-1: off); matmuls get none.
        model_type (str): ``'transformer'`` or ``'cnn'`` (NNCF's default).
        bias_correction (bool): NNCF's bias correction. Default: False.

    Returns:
        openvino.Model: The INT8 model (FakeQuantize on the quantized
        inputs).
    """
    nncf = require_nncf()
    if not calibration:
        raise ValueError('INT8 calibration needs at least one image.')
    recipe = _recipe(model, ignored_names, smooth_quant_conv_alpha,
                     model_type, bias_correction)
    advanced = recipe.pop('advanced_quantization_parameters')
    return nncf.quantize(
        model.clone(),
        nncf.Dataset(list(calibration)),
        subset_size=len(calibration),
        advanced_parameters=advanced,
        **recipe)


def reference_labels(compiled, images: Sequence[np.ndarray],
                     threshold: Optional[float] = None
                     ) -> List[Tuple[np.ndarray, np.ndarray]]:
    """``(image, labels)`` pairs: the labels ``compiled`` gives each image
    (the decode head's ``threshold`` for a binary head), computed once."""
    request = compiled.create_infer_request()
    return [(image, logits_to_labels(run_ir(compiled, image, request),
                                     threshold))
            for image in images]


def count_agreement(compiled, items, threshold: Optional[float] = None
                    ) -> Tuple[int, int, List[float]]:
    """Pixels ``compiled`` labels as the reference labels of ``items``
    (``(image, labels)`` pairs), all pixels, and the agreeing fraction per
    image."""
    request = compiled.create_infer_request()
    equal, total, per_image = 0, 0, []
    for image, reference in items:
        labels = logits_to_labels(run_ir(compiled, image, request), threshold)
        same = int((labels == reference).sum())
        equal, total = equal + same, total + reference.size
        per_image.append(same / reference.size)
    return equal, total, per_image


def label_agreement_metric(threshold: Optional[float] = None):
    """The validation function of :func:`quantize_int8_to_agreement`:
    called with a compiled model and ``(image, reference labels)`` pairs, it
    returns the fraction of all pixels labelled as the reference labels, and
    that fraction per image (NNCF ranks the quantized layers by the images
    they hurt most)."""

    def validate(compiled, items) -> Tuple[float, List[float]]:
        equal, total, per_image = count_agreement(compiled, items, threshold)
        return equal / max(total, 1), per_image

    return validate


def quantize_int8_to_agreement(
        model,
        calibration: Sequence[np.ndarray],
        max_disagreement: float,
        threshold: Optional[float] = None,
        max_float_layers: Optional[int] = None,
        ignored_names: Optional[Sequence[str]] = None,
        threads: Optional[int] = None,
        log: Callable[[str], None] = print):
    """INT8 with the recipe above, then the quantized layers that change the
    labels most returned to float, one at a time, until the INT8 model
    labels at most ``max_disagreement`` of the pixels of ``calibration``
    otherwise than ``model`` (NNCF's accuracy control: each layer's effect
    on the labels is measured, not guessed).

    The fp32 labels are those of ``model`` compiled in f32. Check the
    result on other images: the layers are chosen on these ones.

    Args:
        model (openvino.Model): The fp32 model (left unchanged).
        calibration (Sequence[np.ndarray]): Calibration batches, also the
            images the agreement is measured on.
        max_disagreement (float): Fraction of pixels allowed to change.
        threshold (float, optional): The decode head's ``threshold``.
        max_float_layers (int, optional): At most this many layers are
            returned to float; default: as many as it takes.
        ignored_names (Sequence[str], optional): As for
            :func:`quantize_int8`.
        threads (int, optional): Threads of the reference run.

    Returns:
        openvino.Model: The INT8 model.
    """
    nncf = require_nncf()
    from nncf.quantization.advanced_parameters import (
        AdvancedAccuracyRestorerParameters,
    )
    if not calibration:
        raise ValueError('INT8 calibration needs at least one image.')
    if not 0 <= max_disagreement < 1:
        raise ValueError('max_disagreement is a fraction in [0, 1); got '
                         f'{max_disagreement}.')
    reference = compile_ir(model, threads, inference_precision='f32')
    items = reference_labels(reference, calibration, threshold)
    restorer = AdvancedAccuracyRestorerParameters()
    if max_float_layers is not None:
        restorer.max_num_iterations = max_float_layers
    log(f'INT8: returning layers to float until at most '
        f'{100 * max_disagreement:g} % of the pixels of the '
        f'{len(items)} calibration images change label (NNCF accuracy '
        'control)...')
    return nncf.quantize_with_accuracy_control(
        model.clone(),
        nncf.Dataset(list(calibration)),
        nncf.Dataset(items, lambda item: item[0]),
        label_agreement_metric(threshold),
        max_drop=max_disagreement,
        drop_type=nncf.DropType.ABSOLUTE,
        subset_size=len(calibration),
        advanced_accuracy_restorer_parameters=restorer,
        **_recipe(model, ignored_names, SMOOTH_QUANT_CONV_ALPHA,
                  'transformer', False))


def unit_probes(model) -> Dict[str, str]:
    """``{'stage i / unit scope': op name}`` for each RepMLPNet unit of an
    exported segmentor: the operation whose output leaves the unit (its
    residual sum), in graph order."""
    scope_of = {}
    for op in model.get_ordered_ops():
        match = _UNIT.match(op.get_friendly_name())
        if match:
            scope_of[op.get_friendly_name()] = match.group(1)
    probes = {}
    for op in model.get_ordered_ops():
        name = op.get_friendly_name()
        scope = scope_of.get(name)
        if scope is None:
            continue
        for output in op.outputs():
            consumers = [t.get_node().get_friendly_name()
                         for t in output.get_target_inputs()]
            if any(scope_of.get(c) != scope for c in consumers):
                probes[scope] = name
    return probes


def _with_outputs(model, names: Sequence[str]):
    model = model.clone()
    ops = {op.get_friendly_name(): op for op in model.get_ops()}
    model.add_outputs([ops[name].output(0) for name in names])
    return model


def probed_outputs(model, names: Sequence[str],
                   images: Sequence[np.ndarray],
                   threads: Optional[int] = None) -> List[List[np.ndarray]]:
    """For each image, the outputs of the operations ``names`` of
    ``model``, run in f32."""
    compiled = compile_ir(_with_outputs(model, names), threads=threads,
                          inference_precision='f32')
    request = compiled.create_infer_request()
    first = len(model.outputs)
    results = []
    for image in images:
        request.infer({0: image})
        results.append([request.get_output_tensor(first + i).data.copy()
                        for i in range(len(names))])
    return results


def stage_errors(reference: Sequence[Sequence[np.ndarray]],
                 actual: Sequence[Sequence[np.ndarray]],
                 stages: Sequence[int]) -> List[Dict[str, float]]:
    """Error of each probed output: ``max |actual - reference|`` and the
    mean absolute difference, both over all images, relative to the largest
    ``|reference|`` of its stage (the outputs of ``stages[i]``)."""
    scale = {}
    for i, stage in enumerate(stages):
        largest = max(reference_scale(ref[i]) for ref in reference)
        scale[stage] = max(scale.get(stage, 0.0), largest)
    rows = []
    for i, stage in enumerate(stages):
        diffs = [np.abs(act[i].astype(np.float64) - ref[i])
                 for ref, act in zip(reference, actual)]
        rows.append(dict(
            stage=stage,
            max_error=max(float(d.max()) for d in diffs) / scale[stage],
            mean_error=float(np.mean([d.mean() for d in diffs])) /
            scale[stage]))
    return rows


def layer_report(fp32_model, int8_model, images: Sequence[np.ndarray],
                 threads: Optional[int] = None) -> List[Dict[str, object]]:
    """Per-unit error of ``int8_model`` against ``fp32_model`` (both
    ``openvino.Model`` of an exported RepMLPNet segmentor) on ``images``,
    relative to the largest fp32 value of the stage (see
    :func:`stage_errors`); the last unit of a stage is the stage's output.

    Returns:
        list[dict]: ``layer`` (the unit's scope), ``stage``, ``max_error``,
        ``mean_error``, ``stage_output`` (bool).
    """
    probes = unit_probes(fp32_model)
    names = list(probes.values())
    stages = [int(_UNIT.match(scope + '/').group(2)) for scope in probes]
    reference = probed_outputs(fp32_model, names, images, threads)
    actual = probed_outputs(int8_model, names, images, threads)
    rows = stage_errors(reference, actual, stages)
    for i, (row, scope) in enumerate(zip(rows, probes)):
        row['layer'] = scope.rsplit('/', 1)[-1]
        row['stage_output'] = i + 1 == len(stages) or stages[i + 1] != stages[i]
    return rows


def format_layer_report(rows: Sequence[Dict[str, object]]) -> str:
    """The rows of :func:`layer_report` as a table, stage outputs marked."""
    lines = ['INT8 vs fp32, relative to the largest fp32 value of the stage',
             f'{"layer":<24}{"stage":>6}{"max error":>12}{"mean error":>12}']
    for row in rows:
        lines.append(
            f'{row["layer"]:<24}{row["stage"]:>6}'
            f'{100 * row["max_error"]:>11.2f}%'
            f'{100 * row["mean_error"]:>11.3f}%'
            + ('  <- stage output' if row['stage_output'] else ''))
    return '\n'.join(lines)


def quantization_summary(model) -> Dict[str, int]:
    """How many convolutions and matmuls of an INT8 model take quantized
    inputs (a FakeQuantize on their data input) and how many stay float."""
    counts = dict(quantized=0, float=0)
    require_openvino()
    for op in model.get_ops():
        if op.get_type_name() not in ('Convolution', 'GroupConvolution',
                                      'MatMul'):
            continue
        source = op.input_value(0).get_node()
        counts['quantized' if source.get_type_name() == 'FakeQuantize'
               else 'float'] += 1
    return counts
