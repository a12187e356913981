"""Interleaved A/B of the CPU inference optimizations, in one process.

Each variant is the deploy RepMLPNet candidate's inference with one more
optimization switched on than the variant before it:

1. ``as written``: the plain unit forward (``fused_inference`` off),
   contiguous NCHW, autocast casting the weights on every call;
2. ``+ fused block``: ``RepMLPBlock.forward_residual`` (prebn1 in the
   window copy, one GEMM on contiguous operands, reverse + gate +
   residual as one pass);
3. ``+ channels_last``: the input (so every convolution) in NHWC;
4. ``+ weights held cast`` (bf16 only): ``CastWeights`` of
   :mod:`mmseg_repmlp.apis.fast_inference`;
5. ``all but the fused block``: everything above with the plain unit
   forward, so that its ``vs previous`` is the fused block's own effect
   with every other optimization on, which can differ from its effect
   alone in row 2 (docs/cpu_inference.md).

The variants run round-robin, one call each per round, so that a change in
the machine's load hits all of them alike; each variant's outputs are
compared with the first's. ``tools/benchmark.py --ablation`` prints the
table.
"""
import statistics
import time
from typing import Any, Callable, Dict, List

import torch
from torch import nn

from ..apis.fast_inference import (
    cast_weights_fn,
    channels_last_fn,
    resolve_dtype,
    with_autocast,
)
from ..models.layers import RepMLPNetUnit
from .candidates import build_candidate
from .complexity import tensors, worst_relative_difference
from .settings import REPMLP_DEPLOY, BenchmarkSettings
from .workloads import forward_fn, image_metas, make_input

#: (name, fused block, channels_last, weights held cast)
VARIANTS = (
    ('as written', False, False, False),
    ('+ fused block', True, False, False),
    ('+ channels_last', True, True, False),
    ('+ weights held cast', True, True, True),
    ('all but the fused block', False, True, True),
)


def _variant(model: nn.Module, forward: Callable, dtype: str, fused: bool,
             channels_last: bool, cast: bool) -> Callable[[Any], Any]:
    units = [m for m in model.modules() if isinstance(m, RepMLPNetUnit)]
    fn = forward
    if cast:
        fn = cast_weights_fn(fn, model, resolve_dtype(dtype))
    fn = with_autocast(fn, dtype)
    if channels_last:
        fn = channels_last_fn(fn)

    def run(x: Any) -> Any:
        for unit in units:
            unit.fused_inference = fused
        with torch.no_grad():
            return fn(x)

    return run


def run_ablation(settings: BenchmarkSettings,
                 dtypes=('fp32', 'bf16')) -> List[Dict[str, Any]]:
    """Time :data:`VARIANTS` for each scope, shape and dtype of
    ``settings``, interleaved; one row per variant."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    candidate = build_candidate(REPMLP_DEPLOY, settings)
    model = candidate.model.eval()
    rows = []
    for shape in settings.shapes:
        x = make_input(settings.batch, shape, settings)
        for scope in settings.scopes:
            forward = forward_fn(model, scope,
                                 image_metas(settings.batch, shape))
            for dtype in dtypes:
                variants = [(name, _variant(model, forward, dtype, *flags))
                            for name, flags in _variants_for(dtype)]
                rows += _interleave(variants, x, settings, dict(
                    scope=scope, shape=list(shape), dtype=dtype))
    return rows


def _variants_for(dtype: str):
    """``(name, flags)`` of :data:`VARIANTS` for ``dtype``: in fp32 the
    weights are already in the compute dtype, so holding them cast is off,
    and a variant that then repeats the one before it is dropped."""
    kept, last = [], None
    for name, fused, channels_last, cast in VARIANTS:
        flags = (fused, channels_last, cast and dtype != 'fp32')
        if flags != last:
            kept.append((name, flags))
        last = flags
    return kept


def _interleave(variants, x, settings: BenchmarkSettings,
                common: Dict[str, Any]) -> List[Dict[str, Any]]:
    outputs = {}
    for name, fn in variants:  # warm-up, and the outputs to compare
        for _ in range(max(settings.warmup, 1)):
            out = fn(x)
        outputs[name] = [t.float() for t in tensors(out)]
    samples: Dict[str, List[float]] = {name: [] for name, _ in variants}
    for _ in range(settings.repeats):
        for name, fn in variants:
            start = time.perf_counter()
            fn(x)
            samples[name].append((time.perf_counter() - start) * 1e3)
    first = variants[0][0]
    rows, before = [], None
    for name, _ in variants:
        median = statistics.median(samples[name])
        rows.append(dict(common, variant=name, median_ms=median,
                         samples_ms=samples[name],
                         vs_previous=None if before is None else
                         median / before,
                         vs_first=median / statistics.median(samples[first]),
                         max_rel_diff=worst_relative_difference(
                             outputs[first], outputs[name])))
        before = median
    return rows


def format_ablation(rows: List[Dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    lines = ['| scope | input | dtype | variant | median ms | vs previous | '
             'vs as written | max rel diff |', '|' + '---|' * 8]
    for r in rows:
        prev = '' if r['vs_previous'] is None else f'{r["vs_previous"]:.2f}x'
        lines.append(
            f'| {r["scope"]} | {"x".join(map(str, r["shape"]))} | '
            f'{r["dtype"]} | {r["variant"]} | {r["median_ms"]:.1f} | {prev} '
            f'| {r["vs_first"]:.2f}x | {r["max_rel_diff"]:.1e} |')
    return '\n'.join(lines)
