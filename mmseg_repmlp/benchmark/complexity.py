"""Parameters, multiply-adds and output agreement of a workload.

MACs come from MMEngine's ``FlopAnalyzer`` (a JIT trace of the actual input),
which counts one fused multiply-add as one "flop": the numbers here are
multiply-accumulates, and achieved FLOP/s use ``2 * MACs``.
"""
import math
from typing import Any, Iterable

import numpy as np
import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import bmm_flop_jit
from torch import Tensor, nn

from ..utils.compare import max_relative_difference


def count_params(modules: Iterable[nn.Module]) -> int:
    """Parameters of ``modules``, each shared tensor counted once."""
    seen = {}
    for module in modules:
        for param in module.parameters():
            seen[id(param)] = param.numel()
    return sum(seen.values())


@torch.no_grad()
def count_macs(module: nn.Module, x: Tensor) -> int:
    """Multiply-adds of ``module(x)`` (FP32, eager, eval mode)."""
    analyzer = FlopAnalyzer(module, (x, ))
    # The deploy block's window FC with several sharesets is one baddbmm
    # (bias + batched product), which FlopAnalyzer has no handle for: its
    # MACs are the batched product's.
    analyzer.set_op_handle('aten::baddbmm', _baddbmm_macs)
    # Elementwise ops (GELU, sigmoid, add) have no handle by design; the
    # per-op warnings would only repeat that for every candidate.
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return int(analyzer.total())


def _baddbmm_macs(inputs: list, outputs: list) -> int:
    """``baddbmm(bias, a, b)``: the MACs of ``bmm(a, b)``."""
    return bmm_flop_jit(inputs[1:3], outputs)


def tensors(outputs: Any) -> list:
    """The tensors of a tensor or a (nested) tuple/list of them (NumPy
    arrays, an engine's outputs, become tensors sharing their memory)."""
    if isinstance(outputs, Tensor):
        return [outputs]
    if isinstance(outputs, np.ndarray):
        return [torch.from_numpy(outputs)]
    return [t for out in outputs for t in tensors(out)]


def worst_relative_difference(reference: Any, outputs: Any) -> float:
    """The largest :func:`~mmseg_repmlp.utils.max_relative_difference` over
    the tensors of two outputs of the same structure."""
    diffs = [max_relative_difference(out, ref) for ref, out in zip(
        tensors(reference), tensors(outputs), strict=True)]
    # A NaN (a broken output) must win, not vanish in max()'s comparisons.
    return max(diffs, key=lambda d: math.inf if math.isnan(d) else d,
               default=0.0)
