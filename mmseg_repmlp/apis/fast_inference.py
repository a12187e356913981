"""Fast inference: autocast, ``torch.compile`` and CUDA-graph replay.

A segmentor's time goes into its dense part: backbone, neck and decode-head
logits at feature resolution. :func:`accelerate` makes an encoder-decoder
segmentor an instance of a :class:`FastInferenceMixin` subclass of its own
class (:class:`FastEncoderDecoder` for MMSegmentation's ``EncoderDecoder``),
whose ``encode_decode`` runs that part

* under autocast to ``dtype`` (bf16/fp16; the logits come back in fp32, so
  the resize, softmax and argmax after it are unchanged),
* compiled with ``torch.compile`` (fuses the elementwise work around the
  GEMMs: BN affine, window copies, gate, residual adds, GELU; on the CPU
  with inductor's freezing, which folds the weights in as constants and
  runs convolutions and linears as oneDNN kernels with fused neighbours),
* replayed as CUDA graphs, one per input shape, which removes the Python
  and kernel-launch overhead that dominates eager batch-1 inference on a
  GPU: with ``compile``, inductor's ``mode='reduce-overhead'``; without it,
  :class:`CUDAGraphCache`.

The segmentor stays the object users hold, so whole and slide inference,
TTA, :func:`mmseg_repmlp.apis.inference_model`, MMSegInferencer and the test
loop all use it, and it still owns its modules: its ``state_dict`` keys are
unchanged, a deep copy runs the copy's weights, and ``.to()``/``.cuda()``
and its ``load_state_dict`` drop what was compiled or captured for the old
weights. Everything else
(data preprocessor, resize of the logits, post-processing) stays as
MMSegmentation has it. fp32 with compile and/or CUDA graphs changes outputs
only by float rounding; bf16/fp16 change them by their precision, which is
the user's choice.

CUDA graphs without compiling: :class:`CUDAGraphCache` captures the eager
function itself, with no tracing (the eager kernels, for a capture cost of
a few eager calls), one graph per input signature on first sight in one
shared memory pool, at most ``max_graphs`` of them (other shapes run
eagerly), and returns outputs the caller owns. PyTorch's CUDA-graph trees
(``torch.compile(mode='reduce-overhead')``) need dynamo and inductor
(minutes per input shape, inductor's kernels) and reuse their output
memory on the next replay; ``torch.cuda.make_graphed_callables`` captures
one input signature per call from sample inputs and, for a module, replaces
its ``forward`` on the instance.
"""
import contextlib
import functools
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple, Union

import torch
from mmseg.models.segmentors import EncoderDecoder
from torch import Tensor, nn

#: ``--dtype`` names of the autocast dtypes.
DTYPES: Dict[str, torch.dtype] = {
    'fp32': torch.float32,
    'bf16': torch.bfloat16,
    'fp16': torch.float16
}

DtypeLike = Union[None, str, torch.dtype]

#: x86 CPU flags with which oneDNN runs an autocast dtype natively (any one
#: set of them), as PyTorch's own oneDNN check accepts them. Without them
#: autocast falls back to slow reference kernels.
NATIVE_CPU_FLAGS: Dict[torch.dtype, Tuple[FrozenSet[str], ...]] = {
    torch.bfloat16: (frozenset({'avx512bw', 'avx512vl', 'avx512dq'}),
                     frozenset({'avx_ne_convert'})),
    torch.float16: (frozenset({'avx512_fp16'}),
                    frozenset({'avx_ne_convert'})),
}


def resolve_dtype(dtype: DtypeLike) -> Optional[torch.dtype]:
    """``'bf16'``/``torch.bfloat16``/... -> autocast dtype; fp32 -> None."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f'dtype must be one of {", ".join(DTYPES)}; '
                             f'got {dtype!r}.')
        dtype = DTYPES[dtype]
    if dtype not in DTYPES.values():
        raise ValueError(f'dtype must be one of {", ".join(DTYPES)}; got '
                         f'{dtype}.')
    return None if dtype == torch.float32 else dtype


@functools.lru_cache(maxsize=None)
def cpu_flags() -> Optional[FrozenSet[str]]:
    """The CPU's feature flags as ``/proc/cpuinfo`` lists them (x86 Linux);
    None where it lists none."""
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('flags'):
                    return frozenset(line.partition(':')[2].split())
    except OSError:
        pass
    return None


def native_cpu_dtype(dtype: torch.dtype) -> bool:
    """Whether this CPU has native oneDNN kernels for autocast to ``dtype``
    (see :data:`NATIVE_CPU_FLAGS`); True where its flags are unknown."""
    flags = cpu_flags()
    if flags is None or dtype not in NATIVE_CPU_FLAGS:
        return True
    return any(needed <= flags for needed in NATIVE_CPU_FLAGS[dtype])


def with_autocast(fn: Callable[..., Any],
                  dtype: DtypeLike) -> Callable[..., Any]:
    """``fn`` under autocast to ``dtype`` on its first argument's device.

    The weight-cast cache is off: a CUDA graph cannot capture it, and in
    inference every call casts each weight once anyway.
    """
    dtype = resolve_dtype(dtype)
    if dtype is None:
        return fn

    def run(x: Tensor, *args, **kwargs) -> Any:
        with torch.autocast(x.device.type, dtype=dtype, cache_enabled=False):
            return fn(x, *args, **kwargs)

    return run


def capture_cuda_graph(fn: Callable[[], Any],
                       device: torch.device,
                       warmup: int = 3,
                       pool: Any = None) -> Callable[[], Any]:
    """Capture ``fn`` (static inputs) as a CUDA graph; return its replay.

    The replay returns the outputs of the captured call, which every replay
    overwrites in place.
    """
    if device.type != 'cuda':
        raise ValueError('CUDA graphs need a CUDA device.')
    # Warm-up on a side stream, as CUDA-graph capture requires: lazy
    # initializations (cuBLAS handles, cudnn.benchmark autotuning) must not
    # be captured.
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        outputs = fn()

    def replay() -> Any:
        graph.replay()
        return outputs

    return replay


def _clone(outputs: Any) -> Any:
    if isinstance(outputs, Tensor):
        return outputs.clone()
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_clone(o) for o in outputs)
    if isinstance(outputs, dict):
        return {k: _clone(v) for k, v in outputs.items()}
    return outputs


class CUDAGraphCache:
    """Run ``fn(x)`` by replaying a CUDA graph captured for ``x``'s shape.

    The first call with a new (shape, stride, dtype, device) captures a
    graph on a static copy of the input; later calls copy the input in,
    replay and return a copy of the outputs (the next replay overwrites
    them). All graphs share one memory pool: a graph's scratch memory may be
    another's, which is safe in any replay order because nothing outlives a
    call but the static inputs (outside the pool) and the captured outputs
    (kept allocated, so no other graph reuses them), and the outputs are
    copied out right after their replay. Past ``max_graphs`` shapes
    (e.g. whole-image testing on ADE20K, whose images differ in size), new
    shapes run eagerly with one warning instead of holding more memory.

    Graphs are inference-only: calls must be made under ``torch.no_grad()``
    and ``fn`` must not depend on anything but ``x`` and the weights, which
    must stay where they were at capture.

    Args:
        fn (callable): ``x -> tensor(s)`` on CUDA.
        max_graphs (int): Most shapes with a graph. Default: 8.
        capture (callable): ``(fn, device, pool=...) -> replay``; the
            default :func:`capture_cuda_graph`.
    """

    def __init__(self,
                 fn: Callable[[Tensor], Any],
                 max_graphs: int = 8,
                 capture: Callable[..., Callable[[], Any]] = capture_cuda_graph
                 ) -> None:
        self.fn = fn
        self.max_graphs = max_graphs
        self.capture = capture
        self.graphs: Dict[Tuple, Tuple[Tensor, Callable[[], Any]]] = {}
        self._pool = None
        self._warned = False

    @staticmethod
    def key(x: Tensor) -> Tuple:
        return (tuple(x.shape), x.stride(), x.dtype, x.device)

    def __call__(self, x: Tensor) -> Any:
        if torch.is_grad_enabled():
            raise RuntimeError('CUDA-graph inference runs under '
                               'torch.no_grad(); a graph cannot backprop.')
        key = self.key(x)
        entry = self.graphs.get(key)
        if entry is None:
            if len(self.graphs) >= self.max_graphs:
                if not self._warned:
                    warnings.warn(
                        f'{self.max_graphs} input shapes already have a CUDA '
                        'graph; other shapes run eagerly. Resize inputs to '
                        'a few fixed sizes to replay graphs for all.', stacklevel=2)
                    self._warned = True
                return self.fn(x)
            if self._pool is None and x.device.type == 'cuda':
                self._pool = torch.cuda.graph_pool_handle()
            static = x.clone()
            replay = self.capture(lambda: self.fn(static), x.device,
                                  pool=self._pool)
            entry = self.graphs[key] = (static, replay)
        static, replay = entry
        static.copy_(x)
        return _clone(replay())


class CastWeights:
    """Hold the convolution and linear weights of a module in an autocast
    dtype, so that autocast does not cast them again on every call.

    Autocast casts each weight of a convolution or matrix product to its
    dtype where it is used, once per call (its cast cache lives only as
    long as one autocast region): for RepMLPNet-B256 that is ~100 M
    parameters read and written per image. This keeps the cast copies and
    swaps them in for the duration of a call (:meth:`swapped`). Autocast
    would have cast them the same way, so outputs are bitwise the same. A
    weight changed in place (an optimizer step, ``load_state_dict``) is
    cast again on the next call; the module's parameters themselves, its
    ``state_dict`` and its training are untouched.

    Args:
        module (nn.Module): Whose ``Conv*d`` and ``Linear`` weights and
            biases to hold.
        dtype (torch.dtype): The autocast dtype.
    """

    #: Modules whose parameters are only read by ops autocast casts.
    CASTS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

    def __init__(self, module: nn.Module, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.slots = [(m, name) for m in module.modules()
                      if isinstance(m, self.CASTS)
                      for name, p in m.named_parameters(recurse=False)
                      if p.is_floating_point()]
        self._cast: List[Optional[Tensor]] = [None] * len(self.slots)
        self._seen: List[Any] = [None] * len(self.slots)

    def _current(self, i: int, param: Tensor) -> Tensor:
        key = (param.data_ptr(), param._version, param.dtype, param.device)
        if self._seen[i] != key:
            self._cast[i] = param.detach().to(self.dtype)
            self._seen[i] = key
        return self._cast[i]

    def swapped(self) -> 'contextlib.AbstractContextManager':
        """Within it, the modules hold the cast weights."""
        return _Swap(self)


class _Swap:

    def __init__(self, cast: CastWeights) -> None:
        self.cast = cast
        self.saved: List[Tensor] = []

    def __enter__(self) -> None:
        for i, (module, name) in enumerate(self.cast.slots):
            param = module._parameters[name]
            self.saved.append(param)
            module._parameters[name] = self.cast._current(i, param)

    def __exit__(self, *exc) -> None:
        for (module, name), param in zip(self.cast.slots, self.saved):
            module._parameters[name] = param
        self.saved = []


def cast_weights_fn(fn: Callable[..., Any], module: nn.Module,
                    dtype: torch.dtype) -> Callable[..., Any]:
    """``fn`` run with ``module``'s weights held in ``dtype`` (see
    :class:`CastWeights`); call it under autocast to ``dtype``."""
    cast = CastWeights(module, dtype)

    def run(*args, **kwargs) -> Any:
        if torch.is_grad_enabled():
            # Gradients belong to the parameters, not to the copies.
            return fn(*args, **kwargs)
        with cast.swapped():
            return fn(*args, **kwargs)

    return run


def channels_last_fn(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` given its 4-D first argument in channels-last layout."""

    def run(x: Tensor, *args, **kwargs) -> Any:
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return fn(x, *args, **kwargs)

    return run


@dataclass(frozen=True)
class FastOptions:
    """How fast inference runs a dense forward.

    Args:
        compile (bool | str): ``torch.compile`` it; a string is the compile
            mode. Compilation happens on the first call of each input shape
            (tens of seconds). On the CPU without a mode, with inductor's
            freezing: under ``no_grad`` the weights are compiled in as
            constants, so change them only before the first call (or
            through the segmentor's ``load_state_dict``/``.to()``, which
            drop what was compiled). Default: False.
        cuda_graph (bool): Replay CUDA graphs (see the module docstring).
            Default: False.
        dtype (str | torch.dtype, optional): Autocast dtype (``'bf16'``,
            ``'fp16'``); None or fp32 for none, kept as None. Without
            ``compile`` and ``cuda_graph``, the weights of convolutions and
            linear layers are held cast (:class:`CastWeights`).
        channels_last (bool): Give the forward its input in channels-last
            layout, so every convolution after it runs in NHWC (oneDNN's
            native layout on the CPU: no reorders around 1x1
            convolutions). Default: False.
    """
    compile: Union[bool, str] = False
    cuda_graph: bool = False
    dtype: DtypeLike = None
    channels_last: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, 'dtype', resolve_dtype(self.dtype))
        if (self.cuda_graph and self.compile and isinstance(self.compile, str)
                and self.compile != 'reduce-overhead'):
            raise ValueError(
                f'compile mode {self.compile!r} with CUDA graphs: use '
                "'reduce-overhead' (inductor's CUDA graphs) or no mode.")

    @property
    def enabled(self) -> bool:
        """Whether they change anything."""
        return bool(self.compile or self.cuda_graph or self.dtype
                    or self.channels_last)

    def to_dict(self) -> Dict[str, Any]:
        """The options, the dtype by its torch name (``'bfloat16'``);
        ``channels_last`` only when on."""
        out = dict(compile=self.compile, cuda_graph=self.cuda_graph,
                   dtype=str(self.dtype or torch.float32).split('.')[-1])
        if self.channels_last:
            out['channels_last'] = True
        return out

    def wrap(self, fn: Callable[[Tensor], Any],
             module: Optional[nn.Module] = None) -> Callable[[Tensor], Any]:
        """``fn`` under autocast, compiled and/or replayed as CUDA graphs.

        Args:
            fn (callable): ``x -> tensor(s)``, e.g. a backbone.
            module (nn.Module, optional): The module whose weights ``fn``
                uses, for :class:`CastWeights`; default ``fn`` itself when
                it is a module.

        Returns:
            callable: Same signature as ``fn``.
        """
        if module is None and isinstance(fn, nn.Module):
            module = fn
        if (self.dtype is not None and module is not None
                and not (self.compile or self.cuda_graph)):
            fn = cast_weights_fn(fn, module, self.dtype)
        fn = with_autocast(fn, self.dtype)
        if self.channels_last:
            fn = channels_last_fn(fn)
        if self.compile:
            mode = ('reduce-overhead' if self.cuda_graph else
                    self.compile if isinstance(self.compile, str) else None)
            # One static graph per input shape (dynamic=False): dynamo's
            # automatic dynamic shapes, on the second shape it sees, did
            # not finish compiling the demo segmentor in 270 s on 2 cores,
            # where a static shape takes about 20 s.
            compiled = torch.compile(fn, mode=mode, dynamic=False)
            if mode is None and _on_cpu(module):
                # Inductor's freezing: weights become constants, BN and
                # casts fold, and convolutions/linears run as oneDNN
                # kernels with their elementwise neighbours fused
                # (GELU, adds) on prepacked weights. It applies to calls
                # under no_grad (inference) and is what closes most of
                # the bf16 gap to OpenVINO (docs/cpu_inference.md).
                return _frozen(compiled)
            return compiled
        if self.cuda_graph:
            return CUDAGraphCache(fn)
        return fn


def _frozen(compiled: Callable[..., Any]) -> Callable[..., Any]:
    """``compiled`` compiling with inductor's freezing on.

    Set around every call, where compilation happens (on first sight of an
    input shape), rather than as ``torch.compile(options=...)``: measured
    on B256 in bf16 at 512x1024, the option left most of the gain out
    (207 ms against 145 ms with the config set).
    """
    from torch._inductor import config

    def run(*args, **kwargs) -> Any:
        with config.patch(freezing=True):
            return compiled(*args, **kwargs)

    return run


def _on_cpu(module: Optional[nn.Module]) -> bool:
    """Whether ``module``'s weights are on the CPU (False when unknown)."""
    if module is None:
        return False
    param = next(module.parameters(), None)
    return param is not None and param.device.type == 'cpu'


class FastInferenceMixin:
    """An encoder-decoder whose ``encode_decode`` runs its dense part
    (:meth:`dense_logits`) as its :class:`FastOptions` say.

    The compiled function or CUDA graphs are made on the first call and
    belong to the instance: a copy (``copy.deepcopy``, pickling) makes its
    own for its own weights, and moving or casting the weights (``.to()``,
    ``.cuda()``, ``.half()``, which all go through ``nn.Module._apply``)
    drops them.
    """
    fast_options: FastOptions
    _fast_dense: Optional[Callable[[Tensor], Tensor]] = None

    @property
    def fast_inference(self) -> Dict[str, Any]:
        """The options, as ``tools/test.py`` logs them."""
        return self.fast_options.to_dict()

    def dense_logits(self, inputs: Tensor) -> Tensor:
        """Backbone, neck and decode-head logits at feature resolution."""
        return self.decode_head.forward(self.extract_feat(inputs))

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Logits resized to the input, as ``EncoderDecoder.encode_decode``
        returns them, in fp32."""
        if self._fast_dense is None:
            self._fast_dense = self.fast_options.wrap(self.dense_logits,
                                                      module=self)
        logits = self._fast_dense(inputs).float()
        return self.decode_head.predict_by_feat(logits, batch_img_metas)

    def _drop_fast_dense(self) -> None:
        """Forget what was compiled or captured for the current weights."""
        if self._fast_dense is not None and self.fast_options.compile:
            # Dynamo keeps compiled code per code object, guarded by the
            # parameters' identity, so compiling the same function again
            # would find it; with frozen weights (CPU) it holds the old
            # values. This drops all compiled code of the process: other
            # compiled models compile again on their next call.
            torch._dynamo.reset()
        self._fast_dense = None

    def _apply(self, fn: Callable, recurse: bool = True) -> nn.Module:
        # Graphs hold the addresses of the weights they were captured with.
        self._drop_fast_dense()
        return super()._apply(fn, recurse)

    def load_state_dict(self, *args, **kwargs) -> Any:
        # It copies into the same parameters, which frozen code ignores.
        self._drop_fast_dense()
        return super().load_state_dict(*args, **kwargs)

    def __getstate__(self) -> Dict[str, Any]:
        state = super().__getstate__()
        state.pop('_fast_dense', None)
        return state


class FastEncoderDecoder(FastInferenceMixin, EncoderDecoder):
    """MMSegmentation's ``EncoderDecoder`` with fast inference."""


_FAST_CLASSES: Dict[type, type] = {EncoderDecoder: FastEncoderDecoder}


def _fast_class(cls: type) -> type:
    """The :class:`FastInferenceMixin` subclass of a segmentor class."""
    if cls not in _FAST_CLASSES:
        _FAST_CLASSES[cls] = type(f'Fast{cls.__name__}',
                                  (FastInferenceMixin, cls),
                                  dict(__module__=__name__))
    return _FAST_CLASSES[cls]


def segmentor_of(model: nn.Module) -> nn.Module:
    """The EncoderDecoder inside model wrappers and TTA models."""
    seen = model
    while not (hasattr(seen, 'extract_feat') and hasattr(seen, 'decode_head')
               and hasattr(seen, 'encode_decode')):
        inner = getattr(seen, 'module', None)
        if not isinstance(inner, nn.Module):
            raise TypeError(
                f'{type(model).__name__} is not an encoder-decoder segmentor '
                '(no extract_feat/decode_head/encode_decode) nor wraps one.')
        seen = inner
    return seen


def is_accelerated(model: nn.Module) -> bool:
    """Whether :func:`accelerate` was applied to the segmentor in ``model``."""
    return isinstance(segmentor_of(model), FastInferenceMixin)


def accelerate(model: nn.Module,
               *,
               compile: Union[bool, str] = False,
               cuda_graph: bool = False,
               dtype: DtypeLike = None,
               channels_last: bool = False) -> nn.Module:
    """Run a segmentor's inference fast; see the module docstring.

    Apply it to the model that will run, after loading weights and
    re-parameterizing: graphs and compiled code are made for the modules
    the segmentor has on its first call.

    Args:
        model (nn.Module): An encoder-decoder segmentor, or a model wrapper
            (DDP, TTA) around one.
        compile (bool | str): ``torch.compile`` the dense part; a string is
            the compile mode. Default: False.
        cuda_graph (bool): Replay CUDA graphs (CUDA only). Default: False.
        dtype (str | torch.dtype, optional): Autocast dtype of the dense
            part (``'bf16'``, ``'fp16'``); None or ``'fp32'`` for none.
        channels_last (bool): Run the dense part in channels-last layout
            (see :class:`FastOptions`). Default: False.

    Returns:
        nn.Module: ``model``, its segmentor now a :class:`FastInferenceMixin`
        (unchanged when nothing is asked).
    """
    segmentor = segmentor_of(model)
    options = FastOptions(compile=compile, cuda_graph=cuda_graph, dtype=dtype,
                          channels_last=channels_last)
    if not options.enabled:
        return model
    if is_accelerated(segmentor):
        raise ValueError('accelerate() was already applied to this model.')
    device = next(segmentor.parameters()).device
    if cuda_graph and device.type != 'cuda':
        raise ValueError(
            f'cuda_graph=True needs the model on a CUDA device; it is on '
            f'{device}. Move it first, or leave CUDA graphs off.')
    if (options.dtype is not None and device.type == 'cpu'
            and not native_cpu_dtype(options.dtype)):
        name = next(k for k, v in DTYPES.items() if v == options.dtype)
        warnings.warn(
            f'{options.dtype} autocast has no native kernels on this CPU '
            f'({torch.backends.cpu.get_cpu_capability()}): it falls back to '
            'slow kernels. Time it against fp32 with tools/benchmark.py '
            f'--device cpu --dtype {name} before using it.', stacklevel=2)
    segmentor.fast_options = options
    segmentor.__class__ = _fast_class(type(segmentor))
    return model
