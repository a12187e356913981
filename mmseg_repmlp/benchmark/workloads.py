"""What is timed: an inference call or a training step of one candidate.

Inference of the ``segmentor`` scope is ``encode_decode`` (backbone, UPerNet,
resize of the logits to the input size): what whole-image testing runs, minus
the data preprocessor (the input is already a normalized tensor). The
``backbone`` scope runs the backbone alone. A training step is one SGD step:
``model.loss`` on random labels (decode and auxiliary heads) for the
segmentor, the mean of the features for the backbone alone.

``repmlp-onnx`` times ``session.run`` of its exported graph, which takes raw
pixels (:func:`make_pixels`) and normalizes them itself.

Each builder returns a closure over static inputs, so the same callable can
be timed, profiled, measured for memory or captured as a CUDA graph.
"""
import contextlib
from typing import Any, Callable, List, Sequence

import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import Tensor, nn

from ..apis.fast_inference import FastOptions, is_accelerated, with_autocast
from ..export.runtime import run_onnx
from .settings import BenchmarkSettings, Shape

Workload = Callable[[], Any]


def make_input(batch: int, shape: Shape,
               settings: BenchmarkSettings) -> Tensor:
    """A seeded random (normalized-image-like) input on the device."""
    gen = torch.Generator().manual_seed(settings.seed)
    x = torch.randn(batch, 3, *shape, generator=gen)
    memory_format = (torch.channels_last if settings.channels_last else
                     torch.contiguous_format)
    return x.to(settings.torch_device, memory_format=memory_format)


def make_pixels(batch: int, shape: Shape,
                settings: BenchmarkSettings) -> np.ndarray:
    """Seeded random raw pixels: ``(N, 3, H, W)`` float32 in 0..255, the
    input of an exported graph (and of a data preprocessor)."""
    gen = torch.Generator().manual_seed(settings.seed)
    return (torch.rand(batch, 3, *shape, generator=gen) * 255).numpy()


def image_metas(batch: int, shape: Shape) -> List[dict]:
    """Metas ``encode_decode`` resizes the logits with (no padding)."""
    return [dict(img_shape=shape, pad_shape=shape, ori_shape=shape)
            for _ in range(batch)]


def random_samples(batch: int, shape: Shape, num_classes: int,
                   settings: BenchmarkSettings) -> List[SegDataSample]:
    """Data samples with uniformly random ground-truth labels."""
    gen = torch.Generator().manual_seed(settings.seed + 1)
    samples = []
    for _ in range(batch):
        label = torch.randint(0, num_classes, (1, *shape), generator=gen)
        sample = SegDataSample(metainfo=image_metas(1, shape)[0])
        sample.gt_sem_seg = PixelData(data=label.to(settings.torch_device))
        samples.append(sample)
    return samples


def autocast(settings: BenchmarkSettings) -> contextlib.AbstractContextManager:
    """Autocast to ``settings.dtype`` (training steps); a no-op for fp32."""
    if settings.dtype == 'fp32':
        return contextlib.nullcontext()
    return torch.autocast(settings.torch_device.type,
                          dtype=settings.torch_dtype)


def forward_fn(model: nn.Module, scope: str,
               metas: Sequence[dict]) -> Callable[[Tensor], Any]:
    """The forward of a scope: the backbone, or ``encode_decode``."""
    if scope == 'backbone':
        return model.backbone
    return lambda x: model.encode_decode(x, list(metas))


def inference_workload(model: nn.Module, scope: str, x: Tensor,
                       settings: BenchmarkSettings,
                       fast: bool = False) -> Workload:
    """One inference call on the static input ``x``.

    Eager: the scope's forward under ``torch.no_grad`` and autocast. Fast:
    what users get from :func:`~mmseg_repmlp.apis.accelerate` with
    ``settings.fast_options``; the segmentor must have been accelerated
    (its ``encode_decode`` is then the fast path) and the backbone alone
    goes through the same
    :meth:`~mmseg_repmlp.apis.fast_inference.FastOptions.wrap`.
    """
    forward = forward_fn(model, scope, image_metas(x.shape[0],
                                                   tuple(x.shape[-2:])))
    model.eval()
    if not fast:
        forward = with_autocast(forward, settings.dtype)
    elif scope == 'backbone':
        forward = FastOptions(**settings.fast_options).wrap(forward)
    elif not is_accelerated(model):
        raise RuntimeError('accelerate() the segmentor before timing its '
                           'fast path.')

    def run() -> Any:
        with torch.no_grad():
            return forward(x)

    return run


def onnx_workload(session: Any, pixels: np.ndarray) -> Workload:
    """One ``session.run`` of an exported segmentor on ``pixels``."""
    return lambda: run_onnx(session, pixels)


def train_workload(model: nn.Module, scope: str, x: Tensor,
                   settings: BenchmarkSettings, num_classes: int,
                   fast: bool = False) -> Workload:
    """One SGD step on ``x`` (and random labels for the segmentor).

    Mixed precision follows MMEngine's ``AmpOptimWrapper``: autocast, plus
    a dynamic ``GradScaler`` for fp16 (``tools/train.py --amp``). bf16 keeps
    fp32's exponent range and runs without a scaler, as the ``-amp-`` configs
    do. Fast: the forward and loss ``torch.compile``-d as one function,
    which includes the heads' ``forward`` that MMSegmentation calls directly
    from ``loss`` (the backward pass is compiled with it).
    """
    model.train()
    params = [p for p in (model.backbone if scope == 'backbone' else
                          model).parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler(
        settings.torch_device.type,
        enabled=settings.is_cuda and settings.dtype == 'fp16')
    if scope == 'segmentor':
        samples = random_samples(x.shape[0], tuple(x.shape[-2:]),
                                 num_classes, settings)

        def loss_fn() -> Tensor:
            loss, _ = model.parse_losses(model.loss(x, samples))
            return loss
    else:

        def loss_fn() -> Tensor:
            # No labels for a bare backbone: a scalar that reaches every
            # output gives the full backward pass.
            return sum(f.float().mean() for f in model.backbone(x))

    if fast:
        loss_fn = torch.compile(loss_fn)

    def step() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        with autocast(settings):
            loss = loss_fn()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    return step


def used_modules(model: nn.Module, scope: str, phase: str) -> List[nn.Module]:
    """Modules a workload runs (for parameter counts)."""
    if scope == 'backbone':
        return [model.backbone]
    parts = [model.backbone]
    for name in ('neck', 'decode_head') + (('auxiliary_head', )
                                           if phase == 'train' else ()):
        part = getattr(model, name, None)
        if part is not None:
            parts.append(part)
    return parts


class CountedForward(nn.Module):
    """The forward a workload runs, as a module FLOP counters can trace.

    For training it is backbone, decode head and auxiliary head logits (the
    loss itself is negligible); the backward pass is not traced.
    """

    def __init__(self, model: nn.Module, scope: str, phase: str,
                 shape: Shape, batch: int) -> None:
        super().__init__()
        self.model = model
        self.scope = scope
        self.phase = phase
        self.metas = image_metas(batch, shape)

    def forward(self, x: Tensor) -> Any:
        if self.scope == 'backbone':
            return self.model.backbone(x)
        if self.phase == 'inference':
            return self.model.encode_decode(x, self.metas)
        feats = self.model.extract_feat(x)
        return (self.model.decode_head(feats),
                self.model.auxiliary_head(feats))
