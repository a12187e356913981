"""OnnxSegmentor: raw pixels in, logits or labels out."""
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmseg_repmlp.export import (
    OnnxSegmentor,
    PipelineResize,
    pipeline_resize,
    resize_like_opencv,
    to_input_array,
)
from mmseg_repmlp.export.wrapper import default_label_dtype, rescale_size


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
    # uint8: the smallest dtype for the classes (it was int64 before).
    assert default.dtype == torch.uint8
    assert default[0, 0, 0] == 1 and strict[0, 0, 0] == 0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='output'):
        OnnxSegmentor(_Segmentor(), 'probs')
    with pytest.raises(ValueError, match='label_dtype'):
        OnnxSegmentor(_Segmentor(), 'labels', 'int8')
    with pytest.raises(ValueError, match='uint8'):
        OnnxSegmentor(_Segmentor(300), 'labels', 'uint8')


def test_label_dtype_defaults_to_the_smallest_that_holds_the_classes():
    image = torch.rand(1, 3, 4, 4) * 255
    assert OnnxSegmentor(_Segmentor(3), 'labels')(image).dtype == torch.uint8
    assert default_label_dtype(256) == 'uint8'
    assert default_label_dtype(257) == 'int64'


def test_empty_batches_and_images_are_refused_clearly():
    model = OnnxSegmentor(_Segmentor())
    for shape in [(0, 3, 4, 4), (1, 3, 0, 0), (1, 3, 5, 0)]:
        with pytest.raises(ValueError, match='N >= 1 images of H, W >= 1'):
            model(torch.zeros(shape))
        with pytest.raises(ValueError, match='N >= 1 images of H, W >= 1'):
            to_input_array(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match='N >= 1 images of H, W >= 1'):
        to_input_array(np.zeros((0, 4, 3), np.uint8))


# Down and up, by 2 (OpenCV's area shortcut) and by odd factors, both
# orientations, tiny, unchanged and off any window size.
SIZES = [(333, 517), (517, 333), (32, 32), (1, 1), (7, 5), (256, 512),
         (128, 256), (512, 1024), (1024, 2048), (97, 193), (100, 1000)]


@pytest.mark.parametrize('keep_ratio', [True, False])
@pytest.mark.parametrize('size', SIZES)
def test_in_graph_resize_is_opencvs_to_the_bit(size, keep_ratio):
    resize = PipelineResize((512, 256), keep_ratio)
    img = np.random.default_rng(sum(size)).integers(0, 256, (*size, 3),
                                                    dtype=np.uint8)
    ref = mmcv.imrescale(img, resize.scale) if keep_ratio else \
        mmcv.imresize(img, resize.scale)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    height, width = rescale_size(torch.tensor([size[0]]),
                                 torch.tensor([size[1]]), resize)
    assert (int(height), int(width)) == ref.shape[:2] == \
        resize.target_size(*size)
    out = resize_like_opencv(x, height, width)[0].permute(1, 2, 0)
    np.testing.assert_array_equal(out.numpy(), ref)


def test_new_size_is_rounded_as_mmcv_rounds_it():
    # int(w * scale + 0.5): halves round up (a 2048 x 4096 or 4096-wide
    # image is halved, so odd sides end in .5, where round() goes to even).
    resize = PipelineResize((2048, 1024), True)
    sides = list(range(1, 3000, 7)) + [1023, 1025, 2047, 2049, 683, 4096]
    for h in sides[::5] + [2048]:
        for w in sides:
            expected = mmcv.rescale_size((w, h), resize.scale)[::-1]
            got = rescale_size(torch.tensor([h]), torch.tensor([w]), resize)
            assert tuple(int(v) for v in got) == expected, (h, w)


def _cfg(**kwargs):
    from mmengine.config import Config
    return Config(kwargs)


def test_pipeline_resize_is_read_from_the_test_pipeline():
    steps = [dict(type='LoadImageFromFile'),
             dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
             dict(type='LoadAnnotations'), dict(type='PackSegInputs')]
    expected = PipelineResize((2048, 1024), True)
    assert pipeline_resize(_cfg(test_pipeline=steps)) == expected
    # Without test_pipeline: the test dataloader's.
    assert pipeline_resize(_cfg(test_dataloader=dict(
        dataset=dict(pipeline=steps)))) == expected
    scoped = [dict(type='mmseg.Resize', scale=512)]
    assert pipeline_resize(_cfg(test_pipeline=scoped)) == PipelineResize(
        (512, 512), False)
    assert pipeline_resize(_cfg(test_pipeline=steps[:1])) is None


@pytest.mark.parametrize('step, message', [
    (dict(type='Resize', scale_factor=0.5), 'scale_factor'),
    (dict(type='Resize', scale=(4, 4), interpolation='nearest'), 'bilinear'),
    (dict(type='RandomFlip', prob=1.0), 'RandomFlip'),
])
def test_what_the_graph_cannot_reproduce_is_refused(step, message):
    with pytest.raises(ValueError, match=message) as err:
        pipeline_resize(_cfg(test_pipeline=[step]))
    assert '--native-resolution' in str(err.value)


def test_resize_in_the_wrapper_is_the_toolkits_path():
    # Resize as MMCV, the model at that size, logits resized to it
    # (encode_decode) and back to the image (postprocess_result).
    resize = PipelineResize((16, 8), True)
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), np.uint8)
    logits = OnnxSegmentor(_Segmentor(), resize=resize)(
        torch.from_numpy(img).permute(2, 0, 1)[None].float())
    resized = torch.from_numpy(mmcv.imrescale(img, (16, 8))).permute(
        2, 0, 1)[None].float()
    assert resized.shape[-2:] == (8, 11)
    inner = OnnxSegmentor(_Segmentor())(resized)
    expected = F.interpolate(inner, size=(5, 7), mode='bilinear',
                             align_corners=False)
    torch.testing.assert_close(logits, expected)
