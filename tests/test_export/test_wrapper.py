"""OnnxSegmentor: raw pixels in, logits or labels out."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmseg_repmlp.export import OnnxSegmentor


class _Segmentor(nn.Module):
    """Stand-in whose "decode head" returns the normalized input's first
    ``classes`` channels at half resolution."""

    def __init__(self, classes=3, threshold=None):
        super().__init__()
        self.decode_head = SimpleNamespace(
            out_channels=classes, align_corners=False, threshold=threshold)
        self.data_preprocessor = SimpleNamespace(
            mean=torch.tensor([10.0, 20.0, 30.0]),
            std=torch.tensor([2.0, 4.0, 8.0]),
            channel_conversion=True,
            _enable_normalize=True)
        self.classes = classes

    def _forward(self, x):
        return x[:, :self.classes, ::2, ::2]


def test_logits_are_preprocessed_and_resized():
    image = torch.rand(2, 3, 6, 8) * 255
    logits = OnnxSegmentor(_Segmentor())(image)
    assert logits.shape == (2, 3, 6, 8)
    rgb = image[:, [2, 1, 0]]
    normalized = (rgb - torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1)) \
        / torch.tensor([2.0, 4.0, 8.0]).view(1, 3, 1, 1)
    expected = F.interpolate(normalized[..., ::2, ::2], size=(6, 8),
                             mode='bilinear', align_corners=False)
    torch.testing.assert_close(logits, expected)
    labels = OnnxSegmentor(_Segmentor(), 'labels', 'uint8')(image)
    assert labels.dtype == torch.uint8
    assert torch.equal(labels.long(), logits.argmax(1))


def test_single_class_labels_use_the_heads_threshold():
    # The one logit is the normalized R (input channel 2, BGR):
    # (pixel - 10) / 2, taken at the top-left pixel and resized.
    image = torch.full((1, 3, 2, 2), 10.0)
    image[0, 2, 0, 0] = 10.0 - 2 * 0.6  # sigmoid(-0.6) = 0.35
    default = OnnxSegmentor(_Segmentor(1), 'labels')(image)
    strict = OnnxSegmentor(_Segmentor(1, threshold=0.4), 'labels')(image)
    assert default.dtype == torch.int64
    assert default[0, 0, 0] == 1 and strict[0, 0, 0] == 0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='output'):
        OnnxSegmentor(_Segmentor(), 'probs')
    with pytest.raises(ValueError, match='label_dtype'):
        OnnxSegmentor(_Segmentor(), 'labels', 'int8')
    with pytest.raises(ValueError, match='uint8'):
        OnnxSegmentor(_Segmentor(300), 'labels', 'uint8')
