import pytest
import torch
from torch.testing import assert_close

from mmseg_repmlp.models.layers import (
    RepMLPBlock,
    pad_to_multiple,
    window_partition,
    window_reverse,
)


@pytest.mark.parametrize('shape,window,sharesets', [
    ((2, 8, 12, 20), (4, 4), 2),
    ((1, 6, 8, 18), (4, 6), 3),
    ((3, 4, 6, 4), (3, 2), 4),
])
def test_partition_round_trips(shape, window, sharesets):
    x = torch.randn(shape)
    windows = window_partition(x, window, sharesets)
    n_win = (shape[2] // window[0]) * (shape[3] // window[1])
    assert windows.shape == (shape[0] * n_win * shape[1] // sharesets,
                             sharesets, *window)
    assert torch.equal(window_reverse(windows, x.shape), x)


def test_partition_groups_consecutive_channels_per_window():
    # Channel c = g * S + s: window (0, 1) of group 1 holds channels 2..3.
    x = torch.arange(4 * 4 * 8.).reshape(1, 4, 4, 8)
    windows = window_partition(x, (4, 4), 2)  # 2 windows, 2 groups
    # Order: (window row, window col, group)
    assert torch.equal(windows[3], x[0, 2:4, :, 4:8])
    assert torch.equal(windows[0], x[0, 0:2, :, 0:4])


def test_partition_crops_every_window_of_a_grid():
    """3 x 4 non-square windows, 3 groups of 2 channels: window k is the
    crop (i, j) of group g, in the order (row i, column j, group g)."""
    x = torch.randn(2, 6, 9, 20)
    h, w, sets = 3, 5, 2
    windows = window_partition(x, (h, w), sets)
    k = 0
    for b in range(2):
        for i in range(3):
            for j in range(4):
                for g in range(3):
                    crop = x[b, g * sets:(g + 1) * sets,
                             i * h:(i + 1) * h, j * w:(j + 1) * w]
                    assert torch.equal(windows[k], crop), (b, i, j, g)
                    k += 1
    assert k == len(windows)


def test_partition_needs_whole_windows():
    with pytest.raises(ValueError, match='pad it first'):
        window_partition(torch.randn(1, 2, 5, 8), (4, 4), 1)


def test_pad_to_multiple():
    x = torch.randn(1, 2, 5, 8)
    assert pad_to_multiple(x, (4, 4)) .shape == (1, 2, 8, 8)
    assert pad_to_multiple(x, (5, 4)) is x


def _identity_block(channels, window, sharesets):
    block = RepMLPBlock(channels, window, sharesets, deploy=True).eval()
    n = window[0] * window[1]
    with torch.no_grad():
        block.fc3.weight.copy_(torch.eye(n).repeat(sharesets, 1)[..., None, None])
        block.fc3.bias.zero_()
    return block


@pytest.mark.parametrize('size,window', [
    ((16, 24), (4, 4)),    # 4x6 windows
    ((8, 18), (4, 6)),     # 2x3 non-square windows
    ((7, 13), (4, 6)),     # padded
    ((24, 8), (2, 8)),     # 12x1 windows
])
def test_identity_fc3_returns_input_times_gate(size, window):
    """Windows go back where they came from (the official reshape fails this
    as soon as there are several windows)."""
    torch.manual_seed(0)
    block = _identity_block(8, window, 2)
    x = torch.randn(2, 8, *size)
    assert_close(block(x), x * block.gp(x))


def test_train_form_with_identity_fc3_and_no_local_branch():
    torch.manual_seed(0)
    block = RepMLPBlock(6, (3, 5), 3, kernels=()).eval()
    with torch.no_grad():
        block.fc3.weight.copy_(torch.eye(15).repeat(3, 1)[..., None, None])
    x = torch.randn(1, 6, 9, 20)
    assert_close(block(x), x * block.gp(x))
