"""Fast inference: autocast, ``torch.compile`` and CUDA-graph replay.

A segmentor's time goes into its dense part: backbone, neck and decode-head
logits at feature resolution. :func:`accelerate` runs that part as one
function, optionally

* under autocast to ``dtype`` (bf16/fp16; the logits come back in fp32, so
  the resize, softmax and argmax after it are unchanged),
* compiled with ``torch.compile`` (fuses the elementwise work around the
  GEMMs: BN affine, window copies, gate, residual adds, GELU),
* replayed as a CUDA graph, one per input shape, which removes the Python
  and kernel-launch overhead that dominates eager batch-1 inference on a GPU.
  With ``compile`` too, this is inductor's own ``mode='reduce-overhead'``;
  without it, :class:`CUDAGraphCache` captures the eager function (no
  compile time).

and installs it as the segmentor's ``encode_decode``, so whole and slide
inference, :func:`mmseg_repmlp.apis.inference_model`, MMSegInferencer and the
test loop all use it. Everything else (data preprocessor, resize of the
logits, post-processing) stays as MMSegmentation has it.

fp32 with compile and/or CUDA graphs changes outputs only by float rounding;
bf16/fp16 change them by their precision, which is the user's choice.
"""
import warnings
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from torch import Tensor, nn

#: ``--dtype`` names of the autocast dtypes.
DTYPES: Dict[str, torch.dtype] = {
    'fp32': torch.float32,
    'bf16': torch.bfloat16,
    'fp16': torch.float16
}

DtypeLike = Union[None, str, torch.dtype]


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


def native_cpu_dtype(dtype: torch.dtype) -> bool:
    """Whether this CPU has native kernels for ``dtype`` (oneDNN's probe:
    AVX512-BF16/AMX for bf16, AVX512-FP16/AMX-FP16 for fp16). Without them
    autocast falls back to kernels many times slower than fp32."""
    probe = {torch.bfloat16: '_is_mkldnn_bf16_supported',
             torch.float16: '_is_mkldnn_fp16_supported'}.get(dtype)
    try:
        return bool(getattr(torch.ops.mkldnn, probe)())
    except (AttributeError, RuntimeError, TypeError):
        return True  # unknown: do not warn


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
    and ``fn`` must not depend on anything but ``x`` and the weights.

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
                        'a few fixed sizes to replay graphs for all.')
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


def fast_forward(fn: Callable[[Tensor], Any],
                 *,
                 compile: Union[bool, str] = False,
                 cuda_graph: bool = False,
                 dtype: DtypeLike = None) -> Callable[[Tensor], Any]:
    """``fn`` under autocast, compiled and/or replayed as CUDA graphs.

    Args:
        fn (callable): ``x -> tensor(s)``, e.g. a backbone.
        compile (bool | str): ``torch.compile`` it; a string is the compile
            mode. Default: False.
        cuda_graph (bool): Replay CUDA graphs (see the module docstring).
            Default: False.
        dtype (str | torch.dtype, optional): Autocast dtype; None or fp32
            for none.

    Returns:
        callable: Same signature as ``fn``.
    """
    fn = with_autocast(fn, dtype)
    if compile:
        mode = compile if isinstance(compile, str) else None
        if cuda_graph:
            if mode not in (None, 'reduce-overhead'):
                raise ValueError(
                    f'compile mode {mode!r} with CUDA graphs: use '
                    "'reduce-overhead' (inductor's CUDA graphs) or no mode.")
            mode = 'reduce-overhead'
        return torch.compile(fn, mode=mode)
    if cuda_graph:
        return CUDAGraphCache(fn)
    return fn


def compile_module(module: nn.Module, **compile_kwargs) -> nn.Module:
    """``torch.compile`` ``module.forward`` in place and return ``module``.

    Unlike ``nn.Module.compile``, which compiles ``__call__``, this also
    covers code that calls ``module.forward(...)`` directly, as
    MMSegmentation's decode heads do in ``predict`` and ``loss``. Parameter
    names and the state dict are unchanged.
    """
    module.forward = torch.compile(module.forward, **compile_kwargs)
    return module


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
    return 'encode_decode' in vars(segmentor_of(model))


def accelerate(model: nn.Module,
               *,
               compile: Union[bool, str] = False,
               cuda_graph: bool = False,
               dtype: DtypeLike = None) -> nn.Module:
    """Run a segmentor's inference fast; see the module docstring.

    Apply it last, to the model that will run (after loading weights,
    re-parameterizing and moving it to its device): a deep copy of an
    accelerated model would still run the original's weights.

    Args:
        model (nn.Module): An encoder-decoder segmentor, or a model wrapper
            (DDP, TTA) around one.
        compile (bool | str): ``torch.compile`` the dense part; a string is
            the compile mode. Compilation happens on the first call of each
            input shape (tens of seconds). Default: False.
        cuda_graph (bool): Replay CUDA graphs (CUDA only). Default: False.
        dtype (str | torch.dtype, optional): Autocast dtype of the dense
            part (``'bf16'``, ``'fp16'``); None or ``'fp32'`` for none.

    Returns:
        nn.Module: ``model``, changed in place (also when nothing is asked).
    """
    segmentor = segmentor_of(model)
    reduced = resolve_dtype(dtype)
    if not compile and not cuda_graph and reduced is None:
        return model
    if is_accelerated(segmentor):
        raise ValueError('accelerate() was already applied to this model.')
    device = next(segmentor.parameters()).device
    if cuda_graph and device.type != 'cuda':
        raise ValueError(
            f'cuda_graph=True needs the model on a CUDA device; it is on '
            f'{device}. Move it first, or leave CUDA graphs off.')
    if (reduced is not None and device.type == 'cpu'
            and not native_cpu_dtype(reduced)):
        capability = torch.backends.cpu.get_cpu_capability()
        warnings.warn(
            f'{reduced} autocast on this CPU ({capability}) has no native '
            'kernels and runs many times slower than fp32 (about 75x for '
            'the demo model on an AVX2 CPU); use fp32 on this machine.')

    def dense(inputs: Tensor) -> Tensor:
        return segmentor.decode_head.forward(segmentor.extract_feat(inputs))

    logits_of = fast_forward(dense, compile=compile, cuda_graph=cuda_graph,
                             dtype=reduced)

    def encode_decode(inputs: Tensor, batch_img_metas) -> Tensor:
        logits = logits_of(inputs).float()
        return segmentor.decode_head.predict_by_feat(logits, batch_img_metas)

    segmentor.encode_decode = encode_decode
    segmentor.fast_inference = dict(
        compile=compile, cuda_graph=cuda_graph,
        dtype=str(reduced or torch.float32).split('.')[-1])
    return model
