"""Inference engines and precisions a candidate is timed in, side by side.

``--engines`` times each inference workload of each candidate again in every
engine named there, on the same input, in the same run as its eager PyTorch
timing:

* ``torch-fp32``, ``torch-bf16``: the workload as
  :func:`~mmseg_repmlp.apis.accelerate` runs it for users on the CPU
  (``channels_last=True``; bf16 autocast with the weights held cast), no
  compiler;
* ``torch-compiled-fp32``, ``torch-compiled-bf16``: the same with
  ``compile=True`` (``tools/test.py --compile``): ``torch.compile`` with
  inductor's freezing on the CPU; the first call compiles (tens of
  seconds, untimed: it is the warm-up);
* ``onnxruntime-fp32``: the workload exported to ONNX (the TorchScript
  exporter, opset :data:`~mmseg_repmlp.export.onnx.DEFAULT_OPSET`, fixed
  size, the same modules :mod:`mmseg_repmlp.export` swaps for export) in an
  onnxruntime CPU session;
* ``openvino-fp32``, ``openvino-bf16``: OpenVINO reading that same ONNX
  file (``Core().read_model``) compiled for the CPU with
  ``INFERENCE_PRECISION_HINT`` ``f32``/``bf16`` (set explicitly: OpenVINO
  picks bf16 for an fp32 model on CPUs with bf16 instructions),
  ``PERFORMANCE_HINT=LATENCY`` and as many threads as PyTorch;
* ``openvino-int8``, ``onnxruntime-int8``: INT8 by each engine's own
  post-training quantization (NNCF with the export's recipe; ONNX Runtime's
  ``quantize_static``) of the export with the RepMLP window FCs in two
  parts, calibrated on the timed input: latency figures (accuracy comes
  from ``tools/export_openvino.py`` and ``tools/test_exported.py``).

OpenVINO is optional: without it, its engines are skipped with a message
saying how to install it. Another precision (an int8 model from a
quantizer, say) is one more :class:`Engine` given to
:func:`register_engine`; its ``prepare`` returns the callable to time.
"""
import copy
import functools
import os.path as osp
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..apis.fast_inference import FastOptions, native_cpu_dtype
from ..export.exportable import make_exportable
from ..export.ir import compile_ir, onnx_to_ir, perf_count_table
from ..export.onnx import DEFAULT_OPSET, trace_to_onnx
from ..export.runtime import ort_session
from .workloads import forward_fn, image_metas

Workload = Callable[[], Any]


@dataclass
class Prepared:
    """What an engine made of a workload.

    Attributes:
        run (callable): One timed call; returns the outputs (tensors or
            arrays), compared with eager PyTorch fp32.
        profile (callable, optional): Runs a few calls and returns the
            engine's own per-layer table (text).
        close (callable, optional): Frees what ``run`` holds.
    """
    run: Workload
    profile: Optional[Callable[[], str]] = None
    close: Optional[Callable[[], None]] = None


@dataclass(frozen=True)
class Engine:
    """An inference engine at one precision.

    Attributes:
        name (str): ``--engines`` name, e.g. ``'openvino-bf16'``.
        runtime (str): ``'torch'``, ``'onnxruntime'``, ``'openvino'``, ...
        precision (str): ``'fp32'``, ``'bf16'``, ``'int8'``, ...
        prepare (callable): ``(model, scope, x, threads, workdir) ->
            Prepared``; ``model`` is the eval-mode segmentor, ``x`` the
            normalized input tensor, ``workdir`` a folder for files that
            lives as long as the workload.
        unavailable (callable): None when the engine can run here, else
            why not (a skip message saying what to install).
        exported (bool): Whether it runs an ONNX export of the workload
            (then the CPU only, and the first call of ``prepare`` exports).
    """
    name: str
    runtime: str
    precision: str
    prepare: Callable[..., Prepared]
    unavailable: Callable[[], Optional[str]] = lambda: None
    exported: bool = True


#: Every engine by name, in report order (see :func:`register_engine`).
ENGINES: Dict[str, Engine] = {}


def register_engine(engine: Engine, replace: bool = False) -> Engine:
    """Add ``engine`` to :data:`ENGINES` (after the built-in ones)."""
    if engine.name in ENGINES and not replace:
        raise ValueError(f'An engine named {engine.name!r} exists already.')
    ENGINES[engine.name] = engine
    return engine


def get_engine(name: str) -> Engine:
    if name not in ENGINES:
        raise KeyError(f'Unknown engine {name!r}; choose from '
                       f'{", ".join(ENGINES)}.')
    return ENGINES[name]


# ----------------------------------------------------------------- PyTorch


def _prepare_torch(dtype: str, compile: bool, model: nn.Module, scope: str,
                   x: Tensor, threads: int, workdir: str) -> Prepared:
    options = FastOptions(dtype=dtype, channels_last=True, compile=compile)
    forward = options.wrap(
        forward_fn(model, scope, image_metas(x.shape[0], tuple(x.shape[-2:]))),
        module=model)

    def run() -> Any:
        with torch.no_grad():
            return forward(x)

    return Prepared(run)


def _native_bf16() -> Optional[str]:
    if native_cpu_dtype(torch.bfloat16):
        return None
    return ('skipped: this CPU has no native bf16 kernels for oneDNN '
            '(AVX-512 BW/VL/DQ or AVX-NE-CONVERT); bf16 would run slow '
            'reference kernels')


# --------------------------------------------------------------- ONNX file


class _Scope(nn.Module):
    """The workload's forward as a module the exporter traces."""

    def __init__(self, model: nn.Module, scope: str,
                 shape: Tuple[int, int], batch: int) -> None:
        super().__init__()
        self.model = model
        self.scope = scope
        self.metas = image_metas(batch, shape)

    def forward(self, x: Tensor) -> Any:
        return forward_fn(self.model, self.scope, self.metas)(x)


def export_workload(model: nn.Module, scope: str, x: Tensor,
                    path: str, opset: int = DEFAULT_OPSET,
                    unfold_local_perceptron: bool = False) -> str:
    """Write the workload's forward (``scope`` of ``model`` on inputs of
    ``x``'s shape) to ``path`` as ONNX; returns ``path``.

    The same exporter, opset and export-friendly module swaps as
    :func:`~mmseg_repmlp.export.onnx.export_onnx`, but the graph is the
    workload itself (normalized input, backbone features or logits at
    the input size), so every engine times the same work as PyTorch.
    ``unfold_local_perceptron``: the RepMLP blocks' window FCs in two parts,
    the form INT8 quantizes (:class:`~mmseg_repmlp.export.exportable.
    UnfoldedRepMLPBlock`).
    """
    if osp.exists(path):
        return path
    module = _Scope(make_exportable(
        copy.deepcopy(model).cpu().eval(),
        unfold_local_perceptron=unfold_local_perceptron), scope,
        tuple(x.shape[-2:]), x.shape[0]).eval()
    trace_to_onnx(module, x.detach().cpu().contiguous(), path, ['input'],
                  opset=opset)
    return path


def _onnx_path(model: nn.Module, scope: str, x: Tensor,
               workdir: str) -> str:
    return export_workload(model, scope, x, osp.join(workdir,
                                                     f'{scope}.onnx'))


def _unfolded_onnx_path(model: nn.Module, scope: str, x: Tensor,
                        workdir: str) -> str:
    """The workload exported with the RepMLP window FCs in two parts, the
    form the INT8 engines quantize."""
    return export_workload(model, scope, x,
                           osp.join(workdir, f'{scope}_unfolded.onnx'),
                           unfold_local_perceptron=True)


def _prepare_onnxruntime_file(path: str, x: Tensor,
                              threads: int) -> Prepared:
    """Time an ONNX file in an onnxruntime CPU session."""
    session = ort_session(path, threads)
    pixels = x.detach().cpu().contiguous().numpy()
    feed = {session.get_inputs()[0].name: pixels}
    return Prepared(lambda: session.run(None, feed))


def _prepare_onnxruntime(model: nn.Module, scope: str, x: Tensor,
                         threads: int, workdir: str) -> Prepared:
    return _prepare_onnxruntime_file(_onnx_path(model, scope, x, workdir), x,
                                     threads)


def _prepare_onnxruntime_int8(model: nn.Module, scope: str, x: Tensor,
                              threads: int, workdir: str) -> Prepared:
    """ONNX Runtime's static INT8 quantization of the export
    ``openvino-int8`` quantizes (RepMLP window FCs in two parts): QDQ,
    per-channel int8 weights, uint8 activations (the VNNI form), MinMax
    ranges calibrated on the timed input (a latency figure, as for
    ``openvino-int8``), every operator ONNX Runtime quantizes quantized."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process
    path = _unfolded_onnx_path(model, scope, x, workdir)
    inferred = osp.join(workdir, f'{scope}_unfolded_inferred.onnx')
    int8 = osp.join(workdir, f'{scope}_ort_int8.onnx')
    quant_pre_process(path, inferred)
    pixels = x.detach().cpu().contiguous().numpy()

    class _Calibration(CalibrationDataReader):

        def __init__(self) -> None:
            self.feeds = iter([{'input': pixels}])

        def get_next(self) -> Optional[Dict[str, np.ndarray]]:
            return next(self.feeds, None)

    quantize_static(inferred, int8, _Calibration(),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    return _prepare_onnxruntime_file(int8, x, threads)


def _onnxruntime_missing() -> Optional[str]:
    from .settings import onnx_available
    if onnx_available():
        return None
    return ('skipped: onnx and onnxruntime are not installed (pip install '
            'onnx onnxruntime)')


# ---------------------------------------------------------------- OpenVINO

#: Engine precision -> OpenVINO's inference precision.
OPENVINO_PRECISIONS = {'fp32': 'f32', 'bf16': 'bf16', 'int8': 'f32'}


@functools.lru_cache(maxsize=None)
def openvino_version() -> Optional[str]:
    """OpenVINO's version, None when it is not installed."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.get_version()


def _openvino_missing() -> Optional[str]:
    if openvino_version() is not None:
        return None
    return ('skipped: OpenVINO is not installed (optional: pip install '
            'openvino)')


def prepare_openvino_file(path: str, x: Tensor, precision: str,
                          threads: int) -> Prepared:
    """Time an ONNX file or an OpenVINO model (IR path or in memory) in
    OpenVINO on the CPU, compiled by :func:`~mmseg_repmlp.export.ir.
    compile_ir` with the inference precision of ``precision`` set
    explicitly (an int8 model runs its float parts in f32)."""
    import openvino as ov
    core = ov.Core()
    source = core.read_model(path) if isinstance(path, str) else path
    inference = OPENVINO_PRECISIONS[precision]
    compiled = compile_ir(source, threads, inference, core=core)
    request = compiled.create_infer_request()
    feed = {0: x.detach().cpu().contiguous().numpy()}

    def run() -> List[np.ndarray]:
        request.infer(feed)
        return [request.get_output_tensor(i).data.copy()
                for i in range(len(compiled.outputs))]

    def profile() -> str:
        counted = compile_ir(source, threads, inference, perf_count=True,
                             core=core)
        req = counted.create_infer_request()
        req.infer(feed)  # not counted: first-call work
        req.infer(feed)
        return perf_count_table(req.get_profiling_info())

    return Prepared(run, profile)


def _prepare_openvino(precision: str, model: nn.Module, scope: str,
                      x: Tensor, threads: int, workdir: str) -> Prepared:
    return prepare_openvino_file(_onnx_path(model, scope, x, workdir), x,
                                 precision, threads)


def _prepare_openvino_int8(model: nn.Module, scope: str, x: Tensor,
                           threads: int, workdir: str) -> Prepared:
    """OpenVINO INT8 by :func:`~mmseg_repmlp.export.quantize.quantize_int8`
    (the export's recipe, calibrated on the timed input: a latency figure,
    not an accuracy one; ``tools/export_openvino.py`` calibrates on
    training images and checks the labels). Models without RepMLP blocks
    get NNCF's default (CNN) settings, as their users would."""
    from ..export.quantize import int8_ignored_names, quantize_int8
    fp32 = onnx_to_ir(_unfolded_onnx_path(model, scope, x, workdir), {},
                      'fp32')
    ignored = int8_ignored_names(fp32)
    calibration = [x.detach().cpu().contiguous().numpy()]
    if ignored:
        int8 = quantize_int8(fp32, calibration, ignored)
    else:
        int8 = quantize_int8(fp32, calibration, [], smooth_quant_conv_alpha=-1,
                             model_type='cnn', bias_correction=True)
    return prepare_openvino_file(int8, x, 'int8', threads)


def _openvino_int8_missing() -> Optional[str]:
    missing = _openvino_missing()
    if missing:
        return missing
    try:
        import nncf  # noqa: F401
    except ImportError:
        return ("skipped: INT8 needs nncf (pip install '.[openvino]')")
    return None


def _openvino_bf16_missing() -> Optional[str]:
    return _openvino_missing() or _native_bf16()


for _engine in (
        Engine('torch-fp32', 'torch', 'fp32',
               functools.partial(_prepare_torch, 'fp32', False),
               exported=False),
        Engine('torch-bf16', 'torch', 'bf16',
               functools.partial(_prepare_torch, 'bf16', False), _native_bf16,
               exported=False),
        Engine('torch-compiled-fp32', 'torch', 'fp32',
               functools.partial(_prepare_torch, 'fp32', True),
               exported=False),
        Engine('torch-compiled-bf16', 'torch', 'bf16',
               functools.partial(_prepare_torch, 'bf16', True), _native_bf16,
               exported=False),
        Engine('onnxruntime-fp32', 'onnxruntime', 'fp32',
               _prepare_onnxruntime, _onnxruntime_missing),
        Engine('onnxruntime-int8', 'onnxruntime', 'int8',
               _prepare_onnxruntime_int8, _onnxruntime_missing),
        Engine('openvino-fp32', 'openvino', 'fp32',
               functools.partial(_prepare_openvino, 'fp32'),
               _openvino_missing),
        Engine('openvino-bf16', 'openvino', 'bf16',
               functools.partial(_prepare_openvino, 'bf16'),
               _openvino_bf16_missing),
        Engine('openvino-int8', 'openvino', 'int8', _prepare_openvino_int8,
               _openvino_int8_missing),
):
    register_engine(_engine)


def workdir() -> tempfile.TemporaryDirectory:
    """A folder for a candidate's exported files, removed with it."""
    return tempfile.TemporaryDirectory(prefix='repmlp_engines_')
