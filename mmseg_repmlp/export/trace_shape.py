"""The input size a dynamic graph is traced at.

RepMLPNet pads a map only when it is not a whole number of windows (strides,
for the stem and the downsampling embeds) and skips the padding otherwise.
The tracer keeps the pad amounts (``-H % window``, computed in the graph) but
bakes the Python branch in for the traced size. Traced at a size where every
pad is taken, the graph pads by amounts that are 0 (no-ops) where none is
needed, so it is right for every size. A graph that resizes its input first
is traced at an input whose *resized* size is such a size.
"""
import math
from typing import Sequence, Tuple

from torch import nn

from ..models import RepMLPNet, RepMLPNetArch
from .wrapper import PipelineResize


def _needs_pad(size: int, multiple: int) -> bool:
    return multiple > 1 and size % multiple != 0


def _pads_everywhere(size: int, patch: int,
                     windows: Sequence[Sequence[int]]) -> bool:
    """Whether an input side of ``size`` is padded by the stem, every
    downsampling embed and every RepMLP block with a window side > 1.

    ``windows[i]`` lists stage ``i``'s window sides along this axis, one per
    block.
    """
    if patch > 1 and not _needs_pad(size, patch):
        return False
    size = math.ceil(size / patch)
    for i, stage in enumerate(windows):
        if i > 0:
            # Each downsampling embed (stride 2) pads its input to even.
            if not _needs_pad(size, 2):
                return False
            size = math.ceil(size / 2)
        if any(w > 1 and not _needs_pad(size, w) for w in stage):
            return False
    return True


def _block_windows(arch: RepMLPNetArch, axis: int) -> list:
    """Window sides along ``axis`` of every block, stage by stage."""
    return [[window[axis]] * depth
            for window, depth in zip(arch.window_sizes, arch.depths)]


def _arch(model: nn.Module) -> RepMLPNetArch:
    backbone = getattr(model, 'backbone', None)
    if not isinstance(backbone, RepMLPNet):
        raise ValueError('Dynamic export needs a RepMLPNet backbone; got '
                         f'{type(backbone).__name__}. Export a fixed size '
                         '(with --shape, without --dynamic).')
    return backbone.arch


def _side_pads_everywhere(arch: RepMLPNetArch, axis: int, side: int) -> bool:
    return _pads_everywhere(side, arch.patch_size, _block_windows(arch, axis))


def padded_trace_shape(model: nn.Module, shape: Tuple[int, int],
                       search: int = 4096) -> Tuple[int, int]:
    """The smallest ``(H', W') >= shape`` at which every padding is taken.

    Only the backbone's public ``arch`` (stem stride, windows and depths) is
    read.

    Args:
        model (nn.Module): A segmentor with a RepMLPNet ``backbone``.
        shape (tuple[int, int]): The smallest acceptable ``(H, W)``.
        search (int): How far above ``shape`` to look, per side.

    Raises:
        ValueError: When the backbone is not a RepMLPNet or no such size
            exists within ``search`` pixels.
    """
    arch = _arch(model)
    result = []
    for axis, side in enumerate(shape):
        for candidate in range(side, side + search):
            if _side_pads_everywhere(arch, axis, candidate):
                result.append(candidate)
                break
        else:
            raise ValueError(
                'No input size near {} pads every RepMLP block, so the '
                'dynamic graph cannot be traced; export a fixed size (with '
                '--shape, without --dynamic).'.format(shape))
    return tuple(result)


def resized_trace_shape(model: nn.Module, resize: PipelineResize,
                        shape: Tuple[int, int],
                        search: int = 4096) -> Tuple[int, int]:
    """An input size near ``shape`` for a graph that resizes its input
    first: one whose resized size takes every padding.

    Every padding branch of the backbone tests both sides together
    (``if pad_h == 0 and pad_w == 0``), so one side that pads everywhere is
    enough. A keep-ratio resize puts one side on the test scale (a whole
    number of windows in the usual configs), so the other one has to; sizes
    ``(H, W')`` and ``(H', W)`` are tried, nearest first. Without
    ``keep_ratio`` the model sees the test scale whatever the input, so
    ``shape`` itself is returned.

    Args:
        model (nn.Module): A segmentor with a RepMLPNet ``backbone``.
        resize (PipelineResize): The resize in the graph.
        shape (tuple[int, int]): Where to start looking.
        search (int): How far above ``shape`` to look, per side.

    Raises:
        ValueError: When the backbone is not a RepMLPNet or no size within
            ``search`` pixels works.
    """
    arch = _arch(model)
    if not resize.keep_ratio:
        return tuple(shape)
    height, width = shape
    for step in range(search):
        for candidate in ((height, width + step), (height + step, width)):
            resized = resize.target_size(*candidate)
            if any(_side_pads_everywhere(arch, axis, side)
                   for axis, side in enumerate(resized)):
                return candidate
    raise ValueError(
        f'No input size near {shape} is resized to one that pads every '
        'RepMLP block, so the dynamic graph cannot be traced; export a fixed '
        'size (with --shape, without --dynamic).')
