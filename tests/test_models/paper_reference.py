"""The RepMLP block written from the paper, as plain loops (tests only).

Shares no code with :mod:`mmseg_repmlp.models`: no window_partition or
window_reverse, no reshapes of the whole map, no fusion maths. It reads the
parameters of a training-time ``RepMLPBlock`` (eval mode) and:

- crops each (i, j) window of the map, zero-padded at the bottom and right to
  whole windows;
- splits the window's channels into groups of S (channel ``c = g * S + s``)
  and gives each channel's window to shareset ``s``: ``fc3``'s ``s``-th
  ``(h*w) x (h*w)`` row block, then ``fc3_bn``'s channel ``s``, plus each
  Local Perceptron branch (a k x k cross-correlation reading zeros outside
  the window, then its BN's channel ``s``);
- puts the result back where it was cropped, crops the map to the input
  size and multiplies it by the Global Perceptron's gate of the input.

:func:`reference_fc3` gives the one affine map per shareset that the
official ``local_inject`` stores as a biased ``fc3``, by probing
:func:`window_unit` with one-hot windows.
"""
import math

import torch


def _bn(values, bn, channel):
    """Eval-mode BatchNorm of channel ``channel``, from its definition."""
    std = torch.sqrt(bn.running_var[channel] + bn.eps)
    return ((values - bn.running_mean[channel]) / std * bn.weight[channel] +
            bn.bias[channel])


def _local_conv(patch, kernel):
    """``k x k`` cross-correlation of ``(..., h, w)`` windows (odd k, stride
    1, output of the window's size), reading zeros outside the window."""
    k = kernel.shape[-1]
    r = k // 2
    h, w = patch.shape[-2:]
    padded = patch.new_zeros(*patch.shape[:-2], h + 2 * r, w + 2 * r)
    padded[..., r:r + h, r:r + w] = patch
    out = torch.zeros_like(patch)
    for dy in range(k):
        for dx in range(k):
            out += kernel[dy, dx] * padded[..., dy:dy + h, dx:dx + w]
    return out


def window_unit(block, s, patch):
    """What shareset ``s`` makes of ``(..., h, w)`` windows of one channel:
    ``fc3`` and ``fc3_bn``, plus the Local Perceptron."""
    h, w = block.window
    n = h * w
    fc = block.fc3.weight[s * n:(s + 1) * n, :, 0, 0]
    y = (patch.reshape(*patch.shape[:-2], n) @ fc.T).reshape(patch.shape)
    y = _bn(y, block.fc3_bn, s)
    for k in block.kernels:
        branch = getattr(block, f'repconv{k}')
        y = y + _bn(_local_conv(patch, branch.conv.weight[s, 0]), branch.bn,
                    s)
    return y


def gate(block, x):
    """Global Perceptron: mean, FC, ReLU, FC, sigmoid; ``(N, C)``."""
    fc1, fc2 = block.gp.fc1, block.gp.fc2
    hidden = torch.relu(x.mean(dim=(2, 3)) @ fc1.weight[:, :, 0, 0].T +
                        fc1.bias)
    return torch.sigmoid(hidden @ fc2.weight[:, :, 0, 0].T + fc2.bias)


@torch.no_grad()
def reference_block(block, x):
    """The training-time ``block`` (eval mode) on ``x``, window by window."""
    batch, channels, height, width = x.shape
    h, w = block.window
    sets = block.sharesets
    n_h, n_w = math.ceil(height / h), math.ceil(width / w)
    padded = x.new_zeros(batch, channels, n_h * h, n_w * w)
    padded[:, :, :height, :width] = x
    out = torch.zeros_like(padded)
    for b in range(batch):
        for i in range(n_h):
            for j in range(n_w):
                rows = slice(i * h, (i + 1) * h)
                cols = slice(j * w, (j + 1) * w)
                crop = padded[b, :, rows, cols]
                for g in range(channels // sets):
                    for s in range(sets):
                        c = g * sets + s
                        out[b, c, rows, cols] = window_unit(block, s, crop[c])
    return out[:, :, :height, :width] * gate(block, x)[:, :, None, None]


@torch.no_grad()
def reference_fc3(block):
    """The biased ``fc3`` equal to ``block``'s training-time branches:
    weight ``(S * n, n, 1, 1)`` and bias ``(S * n,)``, ``n = h * w``.

    Each shareset's map is affine in the window: its bias is its output for
    a zero window, its column ``i`` the output for one-hot window ``i``
    minus that bias.
    """
    h, w = block.window
    n = h * w
    weight = block.fc3.weight.new_zeros(block.sharesets * n, n, 1, 1)
    bias = block.fc3.weight.new_zeros(block.sharesets * n)
    for s in range(block.sharesets):
        zero = window_unit(block, s, block.fc3.weight.new_zeros(h, w))
        one_hot = torch.eye(n, dtype=weight.dtype).reshape(n, h, w)
        columns = window_unit(block, s, one_hot) - zero  # (n inputs, h, w)
        weight[s * n:(s + 1) * n, :, 0, 0] = columns.reshape(n, n).T
        bias[s * n:(s + 1) * n] = zero.reshape(n)
    return weight, bias
