"""OpenVINO IR of an exported segmentor: conversion, metadata, compilation,
saving.

The IR is made from the project's ONNX file (``openvino.convert_model``)
and carries the ONNX file's metadata (:data:`~.onnx.METADATA_SCHEMA`) in its
``rt_info`` under ``mmseg_repmlp``, with the precision it was made for. The
CPU plugin does not read a precision from the IR: on a CPU with bf16 units
it runs every IR, fp32 ones too, in bf16 unless told otherwise. So
:func:`compile_ir` is the one way an IR is compiled here (evaluation,
checks, benchmark): it passes ``INFERENCE_PRECISION_HINT`` from the IR's
``rt_info``, the threads and the latency hint.
"""
import os
import shutil
import tempfile
from collections import defaultdict
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ..utils.fileio import refuse_to_overwrite
from .runtime import to_input_array

#: ``rt_info`` section of the IR that holds the metadata.
RT_INFO_ROOT = 'mmseg_repmlp'
#: Precisions an IR is written in.
PRECISIONS = ('fp32', 'bf16', 'int8')
#: ``INFERENCE_PRECISION_HINT`` each precision is compiled with: INT8 IRs
#: keep their float layers (the ignored scope) in f32, as measured.
INFERENCE_PRECISION = {'fp32': 'f32', 'bf16': 'bf16', 'int8': 'f32'}
#: Keys the IR adds to the ONNX file's metadata.
IR_METADATA = {
    'precision': 'fp32, bf16 or int8: what the IR was made and checked for',
    'inference_precision': 'INFERENCE_PRECISION_HINT to compile it with '
                           "('f32' or 'bf16'); compile_ir passes it",
}
#: File name of the IR in the output folder (with ``model.bin``).
IR_NAME = 'model.xml'


def require_openvino():
    """The ``openvino`` module, or an ImportError saying how to install
    it."""
    try:
        import openvino
    except ImportError as err:
        raise ImportError(
            f'OpenVINO export needs openvino ({err}); install it with '
            "`pip install '.[openvino]'` or `pip install -r "
            'requirements/openvino.txt`.') from None
    return openvino


def ir_file(path: str) -> str:
    """The ``.xml`` of an IR given as the file or as its folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, IR_NAME)
    if not path.endswith('.xml'):
        raise ValueError(f'An OpenVINO IR is an .xml file (with its .bin) '
                         f'or a folder holding {IR_NAME}; got {path!r}.')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'OpenVINO IR {path!r} does not exist.')
    return path


def set_metadata(model, metadata: Dict[str, str]) -> None:
    """Write ``metadata`` (str to str) into ``model``'s ``rt_info``."""
    for key, value in metadata.items():
        model.set_rt_info(str(value), [RT_INFO_ROOT, key])


def read_ir_metadata(model) -> Dict[str, str]:
    """The metadata of an IR (an ``openvino.Model`` or a path), as the
    ONNX file's ``metadata_props`` plus :data:`IR_METADATA`."""
    if not hasattr(model, 'get_rt_info'):
        model = require_openvino().Core().read_model(ir_file(model))
    if not model.has_rt_info([RT_INFO_ROOT]):
        return {}
    section = model.get_rt_info([RT_INFO_ROOT]).astype(dict)
    return {key: value.astype(str) for key, value in section.items()}


def onnx_to_ir(onnx_path: str, metadata: Dict[str, str], precision: str):
    """``openvino.convert_model`` of an ONNX file, with ``metadata`` and
    the precision (:data:`IR_METADATA`) in its ``rt_info``."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}; got '
                         f'{precision!r}.')
    ov = require_openvino()
    model = ov.convert_model(os.fspath(onnx_path))
    set_metadata(model, dict(metadata, precision=precision,
                             inference_precision=INFERENCE_PRECISION[
                                 precision]))
    return model


def compile_ir(model: Union[str, object],
               threads: Optional[int] = None,
               inference_precision: Optional[str] = None,
               latency: bool = True,
               perf_count: bool = False,
               core=None):
    """Compile an IR for the CPU the way it was meant to run.

    Args:
        model (str | openvino.Model): The IR (``.xml`` or its folder) or a
            model in memory.
        threads (int, optional): ``INFERENCE_NUM_THREADS``; default:
            OpenVINO's.
        inference_precision (str, optional): ``'f32'`` or ``'bf16'``;
            default: the IR's ``inference_precision`` (``'f32'`` for an IR
            without metadata: the plugin would otherwise pick bf16 where the
            CPU has it).
        latency (bool): ``PERFORMANCE_HINT`` ``LATENCY`` (one request at a
            time) rather than ``THROUGHPUT``. Default: True.
        perf_count (bool): Collect per-layer performance counters
            (``request.get_profiling_info()``). Default: False.
        core (openvino.Core, optional): The core to compile with.

    Returns:
        openvino.CompiledModel
    """
    ov = require_openvino()
    core = core or ov.Core()
    if isinstance(model, (str, os.PathLike)):
        model = core.read_model(ir_file(model))
    if inference_precision is None:
        inference_precision = read_ir_metadata(model).get(
            'inference_precision', 'f32')
    if inference_precision not in ('f32', 'bf16'):
        raise ValueError("inference_precision must be 'f32' or 'bf16'; got "
                         f'{inference_precision!r}.')
    config = {
        'INFERENCE_PRECISION_HINT': inference_precision,
        'PERFORMANCE_HINT': 'LATENCY' if latency else 'THROUGHPUT',
        'PERF_COUNT': 'YES' if perf_count else 'NO',
    }
    if threads:
        config['INFERENCE_NUM_THREADS'] = int(threads)
    return core.compile_model(model, 'CPU', config)


def compiled_precision(compiled) -> str:
    """The inference precision a compiled model runs with (``'f32'``,
    ``'bf16'``)."""
    return compiled.get_property('INFERENCE_PRECISION_HINT').to_string()


def run_ir(compiled, image_array: np.ndarray, request=None) -> np.ndarray:
    """Run a compiled IR on pixels (see
    :func:`~mmseg_repmlp.export.runtime.to_input_array`); its one output."""
    request = request or compiled.create_infer_request()
    request.infer({0: to_input_array(image_array)})
    return request.get_output_tensor(0).data.copy()


def save_ir(model, out_dir: str, force: bool = False) -> str:
    """Write ``model`` as ``out_dir/model.xml`` and ``.bin``, atomically.

    The IR is saved into a temporary folder beside ``out_dir`` that is
    renamed to ``out_dir`` when complete; an existing ``out_dir`` is
    replaced only with ``force``. Weights are kept as they are (no fp16
    compression).

    Returns:
        str: The ``.xml`` path.
    """
    ov = require_openvino()
    out_dir = os.path.abspath(os.fspath(out_dir))
    refuse_to_overwrite(out_dir, force)
    parent = os.path.dirname(out_dir)
    if not os.path.isdir(parent):
        raise FileNotFoundError(f'Directory {parent!r} does not exist; '
                                'create it first.')
    tmp = tempfile.mkdtemp(dir=parent,
                           prefix='.' + os.path.basename(out_dir) + '.')
    old = None
    try:
        ov.save_model(model, os.path.join(tmp, IR_NAME),
                      compress_to_fp16=False)
        os.chmod(tmp, 0o777 & ~_umask())
        if os.path.lexists(out_dir):
            old = tmp + '.old'
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        if old and os.path.exists(old):
            if os.path.isdir(old) and not os.path.islink(old):
                shutil.rmtree(old)
            else:
                os.remove(old)
    return os.path.join(out_dir, IR_NAME)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def perf_count_table(infos, row_limit: int = 15) -> str:
    """OpenVINO's per-layer counters (``PERF_COUNT``) of one inference,
    summed by layer type and by kernel, as a text table."""
    by_type: Dict[Tuple[str, str], List[float]] = defaultdict(
        lambda: [0.0, 0])
    total = 0.0
    for info in infos:
        if str(info.status).endswith('NOT_RUN'):
            continue
        ms = info.real_time.total_seconds() * 1e3
        total += ms
        slot = by_type[(info.node_type, info.exec_type)]
        slot[0] += ms
        slot[1] += 1
    rows = sorted(by_type.items(), key=lambda kv: -kv[1][0])[:row_limit]
    lines = [f'{"layer type":<24} {"kernel":<28} {"ms":>9} {"%":>6} '
             f'{"layers":>6}', '-' * 77]
    for (kind, kernel), (ms, count) in rows:
        share = 100 * ms / total if total else 0.0
        lines.append(f'{kind:<24} {kernel:<28} {ms:9.2f} {share:6.1f} '
                     f'{count:6d}')
    lines.append(f'{"total":<53} {total:9.2f}')
    return '\n'.join(lines)
