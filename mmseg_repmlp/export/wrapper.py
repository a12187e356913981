"""The module that is exported: a segmentor taking raw pixels and returning
logits or labels at the input size, with the config's test-time resize in
the graph.

``mmseg_repmlp.apis.inference_model`` (MMSegmentation's) resizes every image
with the ``Resize`` of the config's test pipeline (MMCV: the new size by
``mmcv.rescale_size``, the pixels by OpenCV's ``INTER_LINEAR`` on uint8),
runs the model there, resizes the logits bilinearly back to the image and
takes the labels. :class:`OnnxSegmentor` does the same, so the graph gives
the toolkit's labels for an image of any size.
"""
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.onnx.operators import shape_as_tensor

from ..utils.compare import logits_to_labels
from .runtime import check_input_shape

OUTPUTS = ('logits', 'labels')
LABEL_DTYPES = {'int64': torch.int64, 'uint8': torch.uint8}

#: Test pipeline steps that leave the pixels of an in-memory image alone.
PIXEL_NEUTRAL_STEPS = ('LoadImageFromFile', 'LoadImageFromNDArray',
                       'LoadAnnotations', 'PackSegInputs')

# OpenCV's fixed-point INTER_LINEAR for 8-bit images: coefficients in
# 1/2048 (INTER_RESIZE_COEF_BITS = 11).
_COEF_SCALE = 2048


def default_label_dtype(num_classes: int) -> str:
    """The smallest label dtype that holds ``num_classes`` class ids."""
    return 'uint8' if num_classes <= 256 else 'int64'


class PipelineResize(NamedTuple):
    """The ``Resize`` of a test pipeline: MMCV's ``Resize(scale,
    keep_ratio)`` with OpenCV bilinear interpolation.

    Attributes:
        scale (tuple[int, int]): ``(W, H)``, as in the config.
        keep_ratio (bool): Rescale within ``scale`` (``mmcv.imrescale``)
            instead of resizing to it (``mmcv.imresize``).
    """
    scale: Tuple[int, int]
    keep_ratio: bool

    def target_size(self, height: int, width: int) -> Tuple[int, int]:
        """``(H, W)`` MMCV resizes an ``height x width`` image to."""
        if not self.keep_ratio:
            return self.scale[1], self.scale[0]
        factor = min(max(self.scale) / max(height, width),
                     min(self.scale) / min(height, width))
        return int(height * factor + 0.5), int(width * factor + 0.5)


def _step_type(step: dict) -> str:
    kind = step.get('type')
    name = getattr(kind, '__name__', str(kind))
    return name.rsplit('.', 1)[-1]  # 'mmseg.Resize' -> 'Resize'


def pipeline_resize(cfg) -> Optional[PipelineResize]:
    """The resize ``inference_model`` applies, read from a config.

    The ``Resize`` of ``cfg.test_pipeline`` (what ``inference_model``
    builds), else of ``cfg.test_dataloader.dataset.pipeline``; None when
    the pipeline has none (the model then sees images at their own size).

    Raises:
        ValueError: The pipeline changes the pixels in a way the graph does
            not reproduce (another transform, ``scale_factor``, another
            interpolation or backend); export with ``--native-resolution``
            and prepare images as the config does.
    """
    pipeline = cfg.get('test_pipeline')
    if pipeline is None:
        dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
        pipeline = dataset.get('pipeline') or []
    hint = ('; export with --native-resolution and prepare the images as '
            'the config does')
    resizes = []
    for step in pipeline:
        kind = _step_type(step)
        if kind == 'Resize':
            resizes.append(step)
        elif kind not in PIXEL_NEUTRAL_STEPS:
            raise ValueError(f'The test pipeline step {kind} is not '
                             f'reproduced in the graph{hint}.')
    if not resizes:
        return None
    if len(resizes) > 1:
        raise ValueError(f'The test pipeline resizes {len(resizes)} times; '
                         f'the graph reproduces one Resize{hint}.')
    step = resizes[0]
    if step.get('scale') is None:
        raise ValueError('The test pipeline resizes by scale_factor; the '
                         f'graph reproduces Resize(scale=...){hint}.')
    if step.get('interpolation', 'bilinear') != 'bilinear' or \
            step.get('backend', 'cv2') != 'cv2':
        raise ValueError('The graph reproduces bilinear OpenCV resizing; '
                         f'the test pipeline has {step}{hint}.')
    scale = step['scale']
    if isinstance(scale, int):
        scale = (scale, scale)
    return PipelineResize((int(scale[0]), int(scale[1])),
                          bool(step.get('keep_ratio', False)))


def _image_size(image: Tensor) -> Tuple[Tensor, Tensor]:
    """``(H, W)`` of an ``(N, C, H, W)`` tensor as int64 one-element
    tensors that follow the input in a traced graph.

    One element, not 0-dim: the TorchScript exporter turns 0-dim tensors
    into float32 scalars, which would round the float64 size arithmetic.
    """
    shape = shape_as_tensor(image)
    return shape[2:3], shape[3:4]


def rescale_size(height: Tensor, width: Tensor,
                 resize: PipelineResize) -> Tuple[Tensor, Tensor]:
    """:meth:`PipelineResize.target_size` in tensor operations, in float64
    as Python computes ``int(w * scale + 0.5)``."""
    if not resize.keep_ratio:
        return (torch.full_like(height, resize.scale[1]),
                torch.full_like(width, resize.scale[0]))
    h, w = height.double(), width.double()
    factor = torch.minimum(max(resize.scale) / torch.maximum(h, w),
                           min(resize.scale) / torch.minimum(h, w))
    return (torch.floor(h * factor + 0.5).long(),
            torch.floor(w * factor + 0.5).long())


def _linear_taps(src: Tensor, dst: Tensor, clamp: bool):
    """OpenCV's INTER_LINEAR source indices and fixed-point weights along
    one axis, ``src`` pixels to ``dst`` (one-element int64 tensors).

    As in ``cv::resize``: ``f = (float)((d + 0.5) * scale - 0.5)`` with
    ``scale = 1 / (dst / src)`` in double, weights ``round((1 - f) * 2048)``
    and ``round(f * 2048)`` (float32, ties to even). Horizontally the taps
    outside the image are clamped to the border pixel with weight 1
    (``clamp``); vertically OpenCV keeps ``f`` and clamps only the rows.
    """
    scale = 1.0 / (dst.double() / src.double())
    pos = torch.arange(dst[0]).double()
    frac = ((pos + 0.5) * scale - 0.5).float()
    first = torch.floor(frac)
    frac = frac - first
    first = first.double()
    last = (src - 1).double()
    zero = torch.zeros_like(first)
    if clamp:
        before, after = first < 0, first >= last
        frac = torch.where(before | after, torch.zeros_like(frac), frac)
        first = torch.where(before, zero, first)
        first = torch.where(after, last.expand_as(first), first)
    # Max/Min in float64: opset 11 has no integer Max, onnxruntime no
    # float64 Clip.
    index0 = torch.minimum(torch.maximum(first, zero), last).long()
    index1 = torch.minimum(torch.maximum(first + 1, zero), last).long()
    weight0 = torch.round((1 - frac) * _COEF_SCALE).int()
    weight1 = torch.round(frac * _COEF_SCALE).int()
    return index0, index1, weight0, weight1


def resize_like_opencv(image: Tensor, height: Tensor,
                       width: Tensor) -> Tensor:
    """``cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)``
    of uint8 images, bit-exact, in tensor operations that trace to ONNX.

    ``image`` is a float ``(N, C, H, W)`` batch of 0..255 values (rounded
    and clipped to uint8 first, as the toolkit's images are uint8);
    ``height`` and ``width`` are one-element int64 tensors. OpenCV's 8-bit
    path is reproduced: a horizontal pass in exact integers (weights in
    1/2048), then the vertical pass of its SIMD kernel
    (``VResizeLinearVec_32s8u``: ``(b0 * (S0 >> 4)) >> 16`` plus the same
    for the second row, ``+ 2 >> 2``). Plain float bilinear interpolation
    differs from it by 1 in about 12 % of the pixels; the exact version
    matches ``cv2.resize`` everywhere (0 differing pixels from 1x1 to
    2000x3000, up- and downscaling). Integer divisions of non-negative
    values stand for the shifts (ONNX ``BitShift`` is unsigned only).
    """
    pixels = torch.clamp(torch.floor(image + 0.5), 0, 255).int()
    src_h, src_w = _image_size(image)
    x0, x1, a0, a1 = _linear_taps(src_w, width, clamp=True)
    rows = pixels.index_select(3, x0) * a0 + pixels.index_select(3, x1) * a1
    y0, y1, b0, b1 = _linear_taps(src_h, height, clamp=False)
    top = torch.div(rows.index_select(2, y0), 16, rounding_mode='trunc')
    bottom = torch.div(rows.index_select(2, y1), 16, rounding_mode='trunc')
    mixed = (torch.div(b0[:, None] * top, 65536, rounding_mode='trunc') +
             torch.div(b1[:, None] * bottom, 65536, rounding_mode='trunc'))
    return torch.clamp(
        torch.div(mixed + 2, 4, rounding_mode='trunc').float(), 0, 255)


class OnnxSegmentor(nn.Module):
    """Raw pixels in, logits or labels at the input resolution out.

    The input is a float32 ``(N, 3, H, W)`` batch of 0..255 BGR pixels
    (``N, H, W >= 1``). ``inference_model``'s path follows: with ``resize``
    the config's test-time resize (:func:`resize_like_opencv` to
    :func:`rescale_size`); the segmentor's data preprocessor (BGR to RGB,
    mean and std); the model; the logits resized bilinearly to the model's
    input (as ``encode_decode``) and, with ``resize``, back to the input
    size (as ``postprocess_result``). The exported graph needs no
    processing outside it.

    Args:
        segmentor (nn.Module): An MMSegmentation ``EncoderDecoder`` (deployed;
            see :func:`mmseg_repmlp.apis.init_model`). Used as it is: call
            :func:`~mmseg_repmlp.export.make_exportable` on a copy first for
            export.
        output (str): ``'logits'`` or ``'labels'``. Default: 'logits'.
        label_dtype (str, optional): ``'int64'`` or ``'uint8'`` for labels.
            Default: :func:`default_label_dtype` of the head's classes.
        resize (PipelineResize, optional): The test-time resize
            (:func:`pipeline_resize`); None feeds the model the input size.
            Default: None.
    """

    def __init__(self,
                 segmentor: nn.Module,
                 output: str = 'logits',
                 label_dtype: Optional[str] = None,
                 resize: Optional[PipelineResize] = None) -> None:
        super().__init__()
        head = segmentor.decode_head
        label_dtype = label_dtype or default_label_dtype(head.out_channels)
        if output not in OUTPUTS:
            raise ValueError(f'output must be one of {OUTPUTS}; got '
                             f'{output!r}.')
        if label_dtype not in LABEL_DTYPES:
            raise ValueError(f'label_dtype must be one of '
                             f'{tuple(LABEL_DTYPES)}; got {label_dtype!r}.')
        if label_dtype == 'uint8' and head.out_channels > 256:
            raise ValueError(f'{head.out_channels} classes do not fit in '
                             'uint8 labels; use int64.')
        pre = segmentor.data_preprocessor
        if resize is not None and getattr(pre, 'test_cfg', None):
            raise ValueError(
                'The data preprocessor pads test images (test_cfg='
                f'{pre.test_cfg}), which the graph does not reproduce; '
                'export with --native-resolution.')
        self.segmentor = segmentor
        self.output = output
        self.label_dtype = LABEL_DTYPES[label_dtype]
        self.resize = resize
        self.align_corners = bool(head.align_corners)
        self.threshold = getattr(head, 'threshold', None)
        self.bgr_to_rgb = bool(getattr(pre, 'channel_conversion', False))
        if getattr(pre, '_enable_normalize', False):
            mean = pre.mean.detach().reshape(1, -1, 1, 1).float().clone()
            std = pre.std.detach().reshape(1, -1, 1, 1).float().clone()
        else:
            mean = torch.zeros(1, 1, 1, 1)
            std = torch.ones(1, 1, 1, 1)
        self.register_buffer('mean', mean, persistent=False)
        self.register_buffer('std', std, persistent=False)

    def _resize(self, x: Tensor, size) -> Tensor:
        return F.interpolate(x, size=size, mode='bilinear',
                             align_corners=self.align_corners)

    def logits(self, image: Tensor) -> Tensor:
        """``(N, C, H, W)`` logits at the image's size."""
        if not torch.jit.is_tracing():
            check_input_shape(tuple(image.shape))
        x = image
        if self.resize is not None:
            x = resize_like_opencv(x, *rescale_size(*_image_size(x),
                                                    self.resize))
        model_input = x
        if self.bgr_to_rgb:
            x = x[:, [2, 1, 0]]
        x = (x - self.mean) / self.std
        logits = self._resize(self.segmentor._forward(x),
                              model_input.shape[-2:])
        if self.resize is not None:
            logits = self._resize(logits, image.shape[-2:])
        return logits

    def forward(self, image: Tensor) -> Tensor:
        logits = self.logits(image)
        if self.output == 'logits':
            return logits
        return logits_to_labels(logits, self.threshold, self.label_dtype)

