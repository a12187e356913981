"""OpenVINO export of a deployed segmentor (see ``docs/cpu_engines.md``).

The project's ONNX export (:func:`~.onnx.export_segmentor`, checked against
PyTorch and the toolkit's labels) -> ``openvino.convert_model`` -> fp32,
bf16 or INT8 IR, checked before it is written: the fp32 IR against
onnxruntime, bf16 and INT8 against the fp32 IR on held-out images.
"""
import os
import tempfile
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from torch import nn

from ..utils.compare import (
    label_agreement,
    logits_to_labels,
    max_relative_difference,
)
from ..utils.fileio import refuse_to_overwrite
from .check import ToolkitLabels, check_image
from .ir import (
    PRECISIONS,
    compile_ir,
    compiled_precision,
    onnx_to_ir,
    read_ir_metadata,
    run_ir,
    save_ir,
    set_metadata,
)
from .onnx import export_segmentor, read_metadata
from .quantize import (
    count_agreement,
    format_layer_report,
    layer_report,
    quantize_int8,
    quantize_int8_to_agreement,
    reference_labels,
)
from .runtime import ort_session, run_onnx

#: Most pixels (fraction) a bf16 or INT8 IR may label otherwise than the
#: fp32 IR on the held-out images.
DEFAULT_MAX_LABEL_DISAGREEMENT = 0.01
#: With accuracy control, the layers returned to float are chosen until the
#: calibration images disagree on at most this share of the allowed
#: fraction: the held-out check that follows is on other images.
ACCURACY_CONTROL_MARGIN = 0.5


def compare_with_onnx(compiled, session, images: Sequence[np.ndarray],
                      tolerance: float) -> Dict[str, object]:
    """An f32-compiled IR against onnxruntime on ``images`` (each a pixel
    batch): ``rel_diff`` (largest over the images), ``equal_fraction`` (of
    the pixels off near ties, smallest), ``ok``."""
    rel, equal = 0.0, 1.0
    for image in images:
        ref = run_onnx(session, image)
        out = run_ir(compiled, image)
        rel = max(rel, max_relative_difference(out, ref))
        agreement = label_agreement(logits_to_labels(out),
                                    logits_to_labels(ref), ref, tolerance)
        equal = min(equal, agreement.equal_fraction)
    return dict(rel_diff=rel, equal_fraction=equal,
                ok=rel <= tolerance and equal == 1.0)


def label_disagreement(compiled, reference, images: Sequence[np.ndarray],
                       threshold: Optional[float] = None) -> float:
    """Fraction of all pixels of ``images`` that ``compiled`` labels
    otherwise than ``reference`` (both compiled IRs)."""
    equal, total, _ = count_agreement(
        compiled, reference_labels(reference, images, threshold), threshold)
    return (total - equal) / max(total, 1)


def export_openvino(model: nn.Module,
                    out_dir: str,
                    shape: Tuple[int, int],
                    precision: str = 'fp32',
                    calibration: Sequence[np.ndarray] = (),
                    held_out: Sequence[np.ndarray] = (),
                    max_label_disagreement: float = (
                        DEFAULT_MAX_LABEL_DISAGREEMENT),
                    image: Optional[str] = None,
                    tolerance: float = 1e-4,
                    force: bool = False,
                    native_resolution: bool = False,
                    toolkit: Optional[ToolkitLabels] = None,
                    threads: Optional[int] = None,
                    report_layers: bool = False,
                    accuracy_control: bool = False,
                    max_float_layers: Optional[int] = None,
                    log: Callable[[str], None] = print) -> Dict[str, object]:
    """Export, check and atomically write an IR folder ``out_dir``.

    The segmentor goes through :func:`~.onnx.export_segmentor` (dynamic
    batch and size, the config's test-time resize inside unless
    ``native_resolution``; for INT8 with each window FC in two parts) into a
    temporary ONNX file, whose metadata the IR carries in ``rt_info``. The
    fp32 IR must reproduce onnxruntime (relative logit difference within
    ``tolerance``, identical labels off near ties) on ``image`` and
    ``held_out``; a bf16 or INT8 IR may label at most
    ``max_label_disagreement`` of the held-out pixels otherwise than the fp32
    IR. Only an IR that passes is written (``out_dir/model.xml``, ``.bin``).

    Args:
        model (nn.Module): The deployed segmentor (``model.cfg`` set).
        out_dir (str): Folder to write.
        shape (tuple[int, int]): ``(H, W)`` the ONNX graph is checked at.
        precision (str): ``'fp32'``, ``'bf16'`` or ``'int8'``.
        calibration (Sequence[np.ndarray]): INT8 calibration batches.
        held_out (Sequence[np.ndarray]): Batches (not calibration ones) the
            IR is checked on; needed for bf16 and INT8.
        threads (int, optional): Inference threads of the checks.
        report_layers (bool): For INT8, log :func:`~.quantize.layer_report`
            on the held-out images.
        accuracy_control (bool): For INT8, return the quantized layers that
            change the labels most to float until the calibration images
            disagree with fp32 on at most ``ACCURACY_CONTROL_MARGIN *
            max_label_disagreement`` of their pixels
            (:func:`~.quantize.quantize_int8_to_agreement`); at most
            ``max_float_layers`` of them.

    Returns:
        dict: ``onnx`` (:func:`export_segmentor`'s result), ``fp32``
        (:func:`compare_with_onnx`), ``disagreement`` (None for fp32),
        ``layers`` (the report's rows or None), ``path`` (the ``.xml``).

    Raises:
        FileExistsError: ``out_dir`` exists and not ``force``.
        RuntimeError: A check failed; nothing was written.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}; got '
                         f'{precision!r}.')
    if not 0 <= max_label_disagreement <= 1:
        raise ValueError('max_label_disagreement is a fraction in [0, 1]; '
                         f'got {max_label_disagreement}.')
    if precision != 'fp32' and not held_out:
        raise ValueError(f'A {precision} IR is checked on held-out images; '
                         'none were given.')
    if precision == 'int8' and not calibration:
        raise ValueError('INT8 quantization needs calibration images.')
    out_dir = os.path.abspath(os.fspath(out_dir))
    refuse_to_overwrite(out_dir, force)
    if not os.path.isdir(os.path.dirname(out_dir)):
        raise FileNotFoundError(f'Directory {os.path.dirname(out_dir)!r} '
                                'does not exist; create it first.')
    threshold = getattr(model.decode_head, 'threshold', None)
    with tempfile.TemporaryDirectory(prefix='mmseg_repmlp_ov_') as tmp:
        onnx_path = os.path.join(tmp, 'model.onnx')
        onnx_result = export_segmentor(
            model, onnx_path, shape, dynamic=True, image=image,
            tolerance=tolerance, native_resolution=native_resolution,
            toolkit=toolkit, log=log,
            unfold_local_perceptron=precision == 'int8')
        metadata = read_metadata(onnx_path)
        fp32_model = onnx_to_ir(onnx_path, metadata, 'fp32')
        fp32 = compile_ir(fp32_model, threads)
        images = [check_image(image, shape).transpose(2, 0, 1)[None]
                  .astype(np.float32), *held_out]
        fp32_check = compare_with_onnx(fp32, ort_session(onnx_path), images,
                                       tolerance)
        log(f'fp32 IR ({compiled_precision(fp32)}) vs onnxruntime on '
            f'{len(images)} images: max relative logit difference '
            f'{fp32_check["rel_diff"]:.2e} (tolerance {tolerance:g}); '
            f'labels off near ties '
            f'{"identical" if fp32_check["ok"] else "DIFFER"} (fraction '
            f'equal {fp32_check["equal_fraction"]:.6f})')
        if not fp32_check['ok']:
            raise RuntimeError('The fp32 OpenVINO IR does not reproduce '
                               'onnxruntime; nothing was written.')
        result = dict(onnx=onnx_result, fp32=fp32_check, disagreement=None,
                      layers=None)
        target = fp32_model
        if precision == 'bf16':
            target = fp32_model.clone()
            set_metadata(target, dict(read_ir_metadata(fp32_model),
                                      precision='bf16',
                                      inference_precision='bf16'))
        elif precision == 'int8':
            log(f'INT8: calibrating on {len(calibration)} training images '
                '(NNCF)...')
            if accuracy_control:
                target = quantize_int8_to_agreement(
                    fp32_model, calibration,
                    ACCURACY_CONTROL_MARGIN * max_label_disagreement,
                    threshold, max_float_layers, threads=threads, log=log)
            else:
                target = quantize_int8(fp32_model, calibration)
            set_metadata(target, dict(read_ir_metadata(fp32_model),
                                      precision='int8',
                                      inference_precision='f32'))
            if report_layers:
                result['layers'] = layer_report(fp32_model, target,
                                                held_out, threads)
                log(format_layer_report(result['layers']))
        if precision != 'fp32':
            compiled = compile_ir(target, threads)
            disagreement = label_disagreement(compiled, fp32, held_out,
                                              threshold)
            result['disagreement'] = disagreement
            line = (f'{precision} IR ({compiled_precision(compiled)}) vs '
                    f'fp32 IR on {len(held_out)} held-out images: '
                    f'{100 * disagreement:.3f} % of pixels labelled '
                    f'otherwise (at most {100 * max_label_disagreement:g} '
                    '% allowed)')
            log(line)
            if disagreement > max_label_disagreement:
                raise RuntimeError(
                    f'The {precision} IR labels {100 * disagreement:.3f} % '
                    'of the held-out pixels otherwise than the fp32 IR, '
                    f'{100 * (disagreement - max_label_disagreement):.3f} '
                    'points over --max-label-disagreement '
                    f'({100 * max_label_disagreement:g} %); nothing was '
                    'written.' + (
                        ' --accuracy-control returns the layers that '
                        'change the labels most to float.'
                        if precision == 'int8' and not accuracy_control
                        else ''))
        result['path'] = save_ir(target, out_dir, force)
    log(f'OpenVINO IR ({precision}) written to {out_dir}')
    return result
