"""The size a dynamic graph is traced at."""
import pytest
from torch import nn

from mmseg_repmlp.export import (
    PipelineResize,
    padded_trace_shape,
    resized_trace_shape,
)
from mmseg_repmlp.models import RepMLPNet

from ..conftest import TINY_ARCH, TINY_RECT_ARCH


def test_trace_size_pads_every_block(deployed):
    # Demo windows 16, 8, 4, 2 at strides 4..32: 128x256 pads nowhere.
    assert padded_trace_shape(deployed, (128, 256)) == (129, 257)
    assert padded_trace_shape(deployed, (129, 257)) == (129, 257)


def _segmentor(backbone):
    model = nn.Module()
    model.backbone = backbone
    return model


def _pads_everywhere(side, windows, patch=4):
    """Stem, every stride-2 embed and every window pads ``side``."""
    if side % patch == 0:
        return False
    size = -(-side // patch)
    for i, window in enumerate(windows):
        if i:
            if size % 2 == 0:
                return False
            size = -(-size // 2)
        if window > 1 and size % window == 0:
            return False
    return True


@pytest.mark.parametrize('arch', [
    TINY_RECT_ARCH,
    # 1x1 windows never pad: there only the stride-2 embeds do.
    dict(TINY_RECT_ARCH, window_sizes=((3, 5), (3, 5), (1, 1), (1, 1)))
])
def test_trace_size_follows_each_axis_windows(arch):
    model = _segmentor(RepMLPNet(arch))
    h, w = padded_trace_shape(model, (64, 64))
    windows = [[ws[axis] for ws in arch['window_sizes']] for axis in (0, 1)]
    for side, axis_windows in zip((h, w), windows):
        assert _pads_everywhere(side, axis_windows)
        assert not any(_pads_everywhere(s, axis_windows)
                       for s in range(64, side))
    assert padded_trace_shape(model, (h, w)) == (h, w)


def test_only_a_repmlpnet_backbone_can_be_traced_dynamically():
    with pytest.raises(ValueError, match='without --dynamic'):
        padded_trace_shape(_segmentor(nn.Identity()), (64, 64))


@pytest.mark.parametrize('arch', [TINY_ARCH, TINY_RECT_ARCH])
@pytest.mark.parametrize('scale, keep_ratio', [((512, 256), True),
                                               ((2048, 1024), True),
                                               ((96, 96), True),
                                               ((300, 200), False)])
def test_resized_trace_size_pads_every_block_after_the_resize(
        arch, scale, keep_ratio):
    # With the resize in the graph the model sees the resized size; every
    # padding branch tests both sides together, so one side must pad at
    # every stride and window.
    model = _segmentor(RepMLPNet(arch))
    resize = PipelineResize(scale, keep_ratio)
    shape = resized_trace_shape(model, resize, (64, 128))
    resized = resize.target_size(*shape)
    windows = [[ws[axis] if isinstance(ws, tuple) else ws
                for ws in arch['window_sizes']] for axis in (0, 1)]
    if keep_ratio:
        assert any(_pads_everywhere(side, axis_windows)
                   for side, axis_windows in zip(resized, windows)), resized
    else:  # 300x200 pads nowhere: every input is resized to it
        assert shape == (64, 128)
