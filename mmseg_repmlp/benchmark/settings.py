"""What a benchmark run measures: one settings object for every candidate.

Every candidate runs with the same :class:`BenchmarkSettings` (dtype,
channels_last, cudnn.benchmark, torch.compile, CUDA graphs), which is what
makes the comparison fair. :func:`resolve_settings` turns command-line options
into settings, filling what the user left out from the ``--small`` preset and
then from the device's defaults, and checks them with messages that say what
to do.
"""
import functools
import json
import os.path as osp
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, Optional, Tuple, Union

import torch

from ..apis.fast_inference import DTYPES
from ..models.backbones.arch import ARCHS, get_arch

Shape = Tuple[int, int]

REPMLP_TRAIN = 'repmlp-train'
REPMLP_DEPLOY = 'repmlp-deploy'
#: The deploy segmentor exported to ONNX and run by onnxruntime on the CPU.
REPMLP_ONNX = 'repmlp-onnx'
#: The user's own model (``tools/benchmark.py CONFIG CHECKPOINT``, see
#: :mod:`.own_model`): the deploy form init_model builds, the baseline of
#: that report, and the training form of a training checkpoint.
OWN_DEPLOY = 'pytorch-deploy'
OWN_TRAIN = 'pytorch-train'
#: MMSegmentation's own UPerNet baselines, in report order.
BASELINES = ('resnet50', 'resnet101', 'swin-t')
CANDIDATES = (REPMLP_TRAIN, REPMLP_DEPLOY, REPMLP_ONNX) + BASELINES

PHASES = ('inference', 'train')
#: How a workload runs: as written (eager), or through the fast path users
#: get from :func:`~mmseg_repmlp.apis.accelerate` (``--compile``,
#: ``--cuda-graph``), timed side by side with the eager run.
EAGER, FAST = 'eager', 'fast'

SCOPES = ('backbone', 'segmentor')

#: A RepMLPNet that runs in seconds on 2 CPU cores at 128x256 yet keeps every
#: structural feature of the released ones: four stages, several sharesets,
#: the Local Perceptron, 2x4 windows at every stage of a 128x256 input.
SMALL_ARCH = dict(
    channels=(32, 64, 128, 192),
    depths=(1, 1, 2, 1),
    window_sizes=(16, 8, 4, 2),
    sharesets=(1, 4, 8, 16))

#: ``--small``: a few minutes on 2 CPU cores for all the default candidates
#: (:func:`default_candidates`: ``repmlp-onnx`` too when onnxruntime is
#: installed). The UPerNet head, not the backbone, dominates a segmentor's
#: cost (at 512 channels it is ~27 GMACs of the R50 model's ~30 at 128x256),
#: so the head is narrowed too, identically for every candidate.
SMALL_PRESET: Dict[str, Any] = dict(
    shapes=((128, 256), ),
    train_shape=(128, 256),
    arch=SMALL_ARCH,
    head_channels=128,
    warmup=1,
    repeats=3)

#: Warm-up and timed repeats when not given: a GPU needs more iterations for
#: stable medians; a full-size CPU forward takes seconds.
DEFAULT_REPEATS = {'cuda': (10, 50), 'cpu': (1, 5)}


@functools.lru_cache(maxsize=None)
def onnx_available() -> bool:
    """Whether onnx and onnxruntime import (``repmlp-onnx`` needs both)."""
    from ..export.runtime import require_onnx
    try:
        require_onnx()
    except ImportError:
        return False
    return True


def default_candidates() -> Tuple[str, ...]:
    """Every candidate, less ``repmlp-onnx`` when onnxruntime is missing."""
    return tuple(c for c in CANDIDATES
                 if c != REPMLP_ONNX or onnx_available())


@dataclass(frozen=True)
class BenchmarkSettings:
    """Everything that defines a benchmark run.

    Args:
        device (str): ``'cpu'`` or ``'cuda'``.
        shapes (tuple[tuple[int, int]]): Inference input sizes ``(H, W)``.
        batch (int): Inference batch size.
        dtype (str): ``'fp32'``, ``'bf16'`` or ``'fp16'`` (autocast).
        phases (tuple[str]): ``'inference'`` and/or ``'train'``.
        scopes (tuple[str]): ``'backbone'`` (backbone alone) and/or
            ``'segmentor'`` (the whole model).
        train_shape (tuple[int, int]): Crop size of a training step.
        train_batch (int): Crops per training step.
        arch (str | dict): RepMLPNet variant name or arch dict.
        head_channels (int): UPerNet channels, the same for every candidate.
        candidates (tuple[str]): Models to measure, from :data:`CANDIDATES`.
            Default: :func:`default_candidates`.
        warmup (int): Untimed calls before timing.
        repeats (int): Timed calls.
        channels_last (bool): Model and input in channels_last layout.
        cudnn_benchmark (bool): ``torch.backends.cudnn.benchmark`` (CUDA).
        compile (bool): Also time every workload ``torch.compile``-d
            (inference: the backbone and heads; training: the step's
            forward and loss).
        cuda_graph (bool): Also time inference replayed as CUDA graphs
            (CUDA only). Fast inference runs through
            :func:`~mmseg_repmlp.apis.accelerate` with ``dtype``,
            ``compile`` and ``cuda_graph``, as users get it; each fast
            workload is timed next to its eager run.
        peak_tflops (float, optional): Device's dense bf16 peak, for the
            fraction-of-peak column; None leaves it out.
        profile (bool): Print the top operators of each inference workload.
        seed (int): Seed of the weights and inputs.
        threads (int, optional): ``torch.set_num_threads`` (CPU intra-op
            threads); None keeps PyTorch's default (one per core).
        config (str, optional): With ``checkpoint``, time the user's own
            model instead of the built-in candidates (see
            :mod:`.own_model`); ``candidates``, ``arch`` and
            ``head_channels`` then do not apply.
        checkpoint (str, optional): Its training or deploy checkpoint.
        onnx (tuple[str]): Files exported from it, timed in onnxruntime
            next to PyTorch.
        engines (tuple[str]): Also time every inference workload in these
            engines (names of :data:`~.engines.ENGINES`: PyTorch through
            ``accelerate``, onnxruntime, OpenVINO, at their precisions),
            side by side with the eager run.
        cpu_peak_gflops (dict, optional): Peak GFLOP/s per precision for
            the % peak column on the CPU; the runner measures it (a large
            GEMM) when engines are timed and none is given.
    """
    device: str = 'cpu'
    shapes: Tuple[Shape, ...] = ((1024, 2048), )
    batch: int = 1
    dtype: str = 'fp32'
    phases: Tuple[str, ...] = ('inference', )
    scopes: Tuple[str, ...] = SCOPES
    train_shape: Shape = (512, 1024)
    train_batch: int = 2
    arch: Union[str, Dict[str, Any]] = 'B256'
    head_channels: int = 512
    candidates: Tuple[str, ...] = field(default_factory=default_candidates)
    warmup: int = 1
    repeats: int = 5
    channels_last: bool = False
    cudnn_benchmark: bool = False
    compile: bool = False
    cuda_graph: bool = False
    peak_tflops: Optional[float] = None
    profile: bool = False
    seed: int = 0
    threads: Optional[int] = None
    config: Optional[str] = None
    checkpoint: Optional[str] = None
    onnx: Tuple[str, ...] = ()
    engines: Tuple[str, ...] = ()
    cpu_peak_gflops: Optional[Dict[str, float]] = None
    small: bool = field(default=False, compare=False)

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def is_cuda(self) -> bool:
        return self.device == 'cuda'

    @property
    def own_model(self) -> bool:
        """Whether the user's own model is timed (``config`` given)."""
        return self.config is not None

    @property
    def fast_path(self) -> bool:
        """Whether workloads are also timed on the fast path."""
        return bool(self.compile or self.cuda_graph)

    @property
    def fast_options(self) -> Dict[str, Any]:
        """Inference options of :func:`~mmseg_repmlp.apis.accelerate`
        (what ``init_model`` and ``tools/test.py`` offer users)."""
        return dict(compile=self.compile, cuda_graph=self.cuda_graph,
                    dtype=self.dtype)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready copy (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    def validate(self) -> 'BenchmarkSettings':
        """Raise ``ValueError`` naming the option to change; return self."""
        if self.device not in ('cpu', 'cuda'):
            raise ValueError(f'--device must be cpu or cuda; got '
                             f'{self.device!r}.')
        if self.is_cuda and not torch.cuda.is_available():
            raise ValueError('--device cuda, but this PyTorch build sees no '
                             'CUDA device; run with --device cpu.')
        if self.dtype not in DTYPES:
            raise ValueError(f'--dtype must be one of {", ".join(DTYPES)}.')
        if self.own_model:
            self._validate_own_model()
        elif self.onnx:
            raise ValueError('--onnx FILE times a file exported from your '
                             'model: give its CONFIG and CHECKPOINT too.')
        unknown = [c for c in self.candidates if c not in CANDIDATES]
        if unknown or not (self.candidates or self.own_model):
            raise ValueError(f'Unknown or no candidates {unknown}; choose '
                             f'from {", ".join(CANDIDATES)}.')
        if self.engines:
            from .engines import ENGINES
            unknown = [e for e in self.engines if e not in ENGINES]
            if unknown:
                raise ValueError(f'Unknown engines {unknown}; choose from '
                                 f'{", ".join(ENGINES)}.')
            if 'inference' not in self.phases:
                raise ValueError('--engines times inference: use --mode '
                                 'inference or both.')
        if not set(self.phases) <= set(PHASES) or not self.phases:
            raise ValueError(f'phases must be among {PHASES}.')
        if not set(self.scopes) <= set(SCOPES) or not self.scopes:
            raise ValueError(f'scopes must be among {SCOPES}.')
        for name, shape in [('--shape', s) for s in self.shapes] + [
                ('--train-shape', self.train_shape)]:
            if len(shape) != 2 or min(shape) < 32:
                raise ValueError(f'{name} {shape}: give H W of at least 32 '
                                 'pixels each (the backbones stride by 32).')
        for name in ('batch', 'train_batch', 'repeats', 'head_channels'):
            if getattr(self, name) < 1:
                raise ValueError(f'--{name.replace("_", "-")} must be >= 1.')
        if self.threads is not None and self.threads < 1:
            raise ValueError('--threads must be >= 1.')
        if self.warmup < 0:
            raise ValueError('--warmup must be >= 0.')
        if self.cuda_graph and not self.is_cuda:
            raise ValueError('--cuda-graph needs --device cuda (CUDA graphs '
                             'replay GPU work); drop it on the CPU.')
        if (self.compile or self.cuda_graph) and self.warmup < 1:
            raise ValueError('--compile and --cuda-graph compile or capture '
                             'during warm-up: use --warmup 1 or more.')
        if ('train' in self.phases and self.dtype == 'fp16'
                and not self.is_cuda):
            raise ValueError('fp16 training needs CUDA (GradScaler); use '
                             '--dtype bf16 for mixed precision on the CPU.')
        if get_arch(self.arch).num_stages != 4:
            raise ValueError('UPerNet takes four feature levels: give a '
                             '--arch with four stages.')
        if self.cudnn_benchmark and not self.is_cuda:
            warnings.warn('--cudnn-benchmark has no effect on the CPU.', stacklevel=2)
        if self.cuda_graph and 'train' in self.phases:
            warnings.warn('--cuda-graph applies to inference; training steps '
                          'run without graphs for every candidate.', stacklevel=2)
        return self


    def _validate_own_model(self) -> None:
        for what, path in (('CONFIG', self.config),
                           ('CHECKPOINT', self.checkpoint),
                           *(('--onnx', p) for p in self.onnx)):
            if not path or not osp.isfile(path):
                raise ValueError(f'{what} {path!r} does not exist.')
        if self.phases != ('inference', ) or self.scopes != ('segmentor', ):
            raise ValueError('Your own model is timed as whole-segmentor '
                             'inference; --mode train and --scope backbone '
                             'are for the backbone comparison (no CONFIG).')


def parse_shape(text: str) -> Shape:
    """``'512x1024'`` -> ``(512, 1024)`` (height x width)."""
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise ValueError(
            f'Shape {text!r} is not HxW, e.g. 512x1024.') from None
    return (height, width)


def load_arch(value: str) -> Union[str, Dict[str, Any]]:
    """``--arch``: a RepMLPNet variant name or the path of a JSON arch dict.

    Returns the name (upper case) or the dict, checked by
    :func:`~mmseg_repmlp.models.backbones.arch.get_arch`.
    """
    if value.upper() in ARCHS:
        return value.upper()
    if not osp.isfile(value):
        raise ValueError(
            f'--arch {value!r} is neither a RepMLPNet variant '
            f'({", ".join(ARCHS)}) nor an existing JSON file with channels, '
            'depths, window_sizes and sharesets.')
    with open(value) as f:
        try:
            arch = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'--arch {value}: not valid JSON ({err}).') \
                from None
    if not isinstance(arch, dict):
        raise ValueError(f'--arch {value}: the JSON must be an object with '
                         'channels, depths, window_sizes and sharesets.')
    get_arch(arch)
    return arch


def resolve_settings(options: Dict[str, Any],
                     small: bool = False) -> BenchmarkSettings:
    """Settings from options, where None means "not given".

    Precedence: explicit options, then :data:`SMALL_PRESET` (with
    ``small``), then :class:`BenchmarkSettings` defaults, with warm-up and
    repeats defaulting per device (:data:`DEFAULT_REPEATS`).

    Args:
        options (dict): Field names of :class:`BenchmarkSettings` to values;
            None values are ignored.
        small (bool): Apply :data:`SMALL_PRESET` under the explicit options.

    Returns:
        BenchmarkSettings: Validated settings.
    """
    given = {k: v for k, v in options.items() if v is not None}
    unknown = set(given) - set(BenchmarkSettings.__dataclass_fields__)
    if unknown:
        raise TypeError(f'Unknown benchmark settings {sorted(unknown)}.')
    values = dict(SMALL_PRESET) if small else {}
    values.update(given)
    device = values.get('device') or ('cuda' if torch.cuda.is_available()
                                      else 'cpu')
    warmup, repeats = DEFAULT_REPEATS[device if device == 'cuda' else 'cpu']
    values.setdefault('warmup', warmup)
    values.setdefault('repeats', repeats)
    if values.get('peak_tflops') is None and device == 'cuda' \
            and torch.cuda.is_available():
        values['peak_tflops'] = default_peak_tflops(
            torch.cuda.get_device_name())
    for key in ('shapes', 'phases', 'scopes', 'candidates', 'onnx',
                'engines'):
        if key in values:
            values[key] = tuple(values[key])
    values['shapes'] = tuple(
        tuple(s) for s in values.get('shapes', BenchmarkSettings.shapes))
    if 'train_shape' in values:
        values['train_shape'] = tuple(values['train_shape'])
    settings = replace(BenchmarkSettings(), device=device, small=small,
                       **{k: v for k, v in values.items() if k != 'device'})
    return settings.validate()


#: Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, by device name.
_PEAK_TFLOPS = (('H200', 989.0), ('H100 PCIe', 756.0), ('H100 NVL', 835.0),
                ('H100', 989.0), ('A100', 312.0))


def default_peak_tflops(device_name: str) -> Optional[float]:
    """Dense bf16 peak of a known GPU, else None (pass ``--peak-tflops``)."""
    for key, peak in _PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return peak
    return None
