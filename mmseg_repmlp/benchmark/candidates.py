"""The benchmarked models, built from configs by MMSegmentation's registry.

* ``repmlp-train``: this project's UPerNet + RepMLPNet
  (``configs/cityscapes/upernet_repmlpnet.py``, ``init_cfg=None``), training
  structure;
* ``repmlp-deploy``: the same weights after
  :func:`mmseg_repmlp.reparameterize_model`;
* ``repmlp-onnx``: that deploy segmentor exported to ONNX
  (:func:`mmseg_repmlp.export.onnx.export_onnx`, raw pixels in, logits out)
  and run by onnxruntime on the CPU (:func:`onnx_session`);
* ``resnet50``, ``resnet101``, ``swin-t``: MMSegmentation's own UPerNet
  configs (``mmseg::_base_/models/upernet_{r50,swin}.py``).

Every candidate gets the same UPerNet head (``head_channels``, 19 classes),
SyncBN reverted to BN (no process group is needed), eval mode, and random
weights from the same seed.
"""
import copy
import functools
import os.path as osp
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.hub import get_config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from torch import nn

from ..checkpoint.deploy_ckpt import build_segmentor
from ..deploy import is_deployed, reparameterize_model
from ..export.onnx import export_onnx
from ..export.runtime import ort_session
from ..models.backbones.arch import get_arch
from ..models.utils.norm_stats import randomize_norm_stats_
from ..utils.config_paths import config_path
from .settings import (
    BASELINES,
    CANDIDATES,
    REPMLP_DEPLOY,
    REPMLP_ONNX,
    REPMLP_TRAIN,
    BenchmarkSettings,
    Shape,
)

NUM_CLASSES = 19
REPMLP_CONFIG = 'cityscapes/upernet_repmlpnet.py'
#: Candidates built from this project's RepMLPNet config.
REPMLP_CANDIDATES = (REPMLP_TRAIN, REPMLP_DEPLOY, REPMLP_ONNX)
_BASE_CONFIGS = {
    'resnet50': 'mmseg::_base_/models/upernet_r50.py',
    'resnet101': 'mmseg::_base_/models/upernet_r50.py',
    'swin-t': 'mmseg::_base_/models/upernet_swin.py',
}


@dataclass
class Candidate:
    """A built model ready to measure.

    Attributes:
        name (str): Candidate name (see :data:`.settings.CANDIDATES`).
        model (nn.Module): The segmentor, on the device, in eval mode
            (for ``repmlp-onnx``, the deploy segmentor it exports).
        backbone (str): Human-readable backbone description.
        structure (str): See :func:`structure_of`.
        reference (nn.Module, optional): For ``repmlp-deploy`` and
            ``repmlp-onnx``, the training-structure model the deploy one was
            converted from, kept only until the runner has compared their
            outputs.
        sessions (dict): For ``repmlp-onnx``, the onnxruntime session of
            each ``(shape, batch)`` exported so far (see :func:`onnx_session`).
        eager_outputs (dict): Outputs (on the CPU) of each eager inference
            plan that has a fast-path twin, kept until the twin is compared
            with them.
        onnx_file (str, optional): For an ONNX candidate, the exported file
            to run instead of exporting ``model`` (``tools/benchmark.py
            CONFIG CHECKPOINT --onnx FILE``).
    """
    name: str
    model: nn.Module
    backbone: str
    structure: str
    reference: Optional[nn.Module] = None
    sessions: Dict[Tuple[Shape, int], Any] = field(default_factory=dict)
    eager_outputs: Dict[Any, Any] = field(default_factory=dict)
    onnx_file: Optional[str] = None

    @property
    def baseline(self) -> bool:
        return self.structure == 'baseline'


@dataclass(frozen=True)
class CandidateSpec:
    """A candidate before it is built: what its records say, and how to
    build it (only once it has something to run).

    Attributes:
        name (str): The name in the records.
        structure (str): ``'train'``, ``'deploy'``, ``'onnx'`` or
            ``'baseline'`` (see :func:`structure_of`).
        backbone (str): Its description in the records.
        build (callable): Returns the :class:`Candidate`.
        baseline (bool): Other candidates' latencies are given relative
            to it (``lat/NAME``).
    """
    name: str
    structure: str
    backbone: str
    build: Callable[[], Candidate]
    baseline: bool = False


def candidate_spec(name: str, settings: BenchmarkSettings) -> CandidateSpec:
    """The spec of built-in candidate ``name``: :func:`build_candidate`."""
    structure = structure_of(name)
    return CandidateSpec(name, structure,
                         describe_backbone(name, settings.arch),
                         functools.partial(build_candidate, name, settings),
                         baseline=structure == 'baseline')


def to_device(settings: BenchmarkSettings,
              *models: Optional[nn.Module]) -> None:
    """Move ``models`` to the device and memory format of ``settings``,
    in place (None entries are skipped)."""
    memory_format = (torch.channels_last if settings.channels_last else
                     torch.contiguous_format)
    for module in models:
        if module is not None:
            module.to(settings.torch_device, memory_format=memory_format)


def model_config(name: str, arch: Union[str, dict] = 'B256',
                 head_channels: int = 512) -> ConfigDict:
    """The ``model`` config of a candidate.

    Args:
        name (str): Candidate name.
        arch (str | dict): RepMLPNet arch (RepMLPNet candidates only).
        head_channels (int): UPerNet channels.

    Returns:
        ConfigDict: A config MMSegmentation's ``MODELS`` builds.
    """
    if name in REPMLP_CANDIDATES:
        model = _model_of(config_path(REPMLP_CONFIG))
        # Random weights: the benchmark never needs the ImageNet file.
        model.backbone.init_cfg = None
        model.backbone.arch = arch
        channels = list(get_arch(arch).channels)
    elif name in BASELINES:
        model = _model_of(_BASE_CONFIGS[name])
        model.pretrained = None
        if name == 'resnet101':
            model.backbone.depth = 101
        if name == 'swin-t':
            # Pinned, so a change of MMSegmentation's base cannot silently
            # change the baseline.
            model.backbone.update(
                embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                window_size=7, init_cfg=None)
            channels = [96, 192, 384, 768]
        else:
            channels = [256, 512, 1024, 2048]
    else:
        raise KeyError(f'Unknown candidate {name!r}; choose from '
                       f'{", ".join(CANDIDATES)}.')
    model.decode_head.update(
        in_channels=channels, channels=head_channels, num_classes=NUM_CLASSES)
    model.auxiliary_head.update(
        in_channels=channels[model.auxiliary_head.in_index],
        num_classes=NUM_CLASSES)
    model.train_cfg = dict()
    model.test_cfg = dict(mode='whole')
    return model


def _model_of(config: str) -> ConfigDict:
    """A fresh copy of ``config``'s ``model`` (a path or ``mmseg::...``)."""
    return copy.deepcopy(_load_model(config))


@functools.lru_cache(maxsize=None)
def _load_model(config: str) -> ConfigDict:
    # Resolving each ``mmseg::`` base parses MMSegmentation's ~200 metafiles
    # (about a second): both RepMLPNet candidates share one parse.
    if config.startswith('mmseg::'):
        return get_config(config).model
    return Config.fromfile(config).model


def describe_backbone(name: str, arch: Union[str, dict]) -> str:
    """Short backbone label for reports."""
    if name in REPMLP_CANDIDATES:
        # A custom arch is spelled out in the JSON's settings.
        return f'RepMLPNet-{arch if isinstance(arch, str) else "custom"}'
    return {'resnet50': 'ResNetV1c-50', 'resnet101': 'ResNetV1c-101',
            'swin-t': 'Swin-T'}[name]


def structure_of(name: str) -> str:
    """``'train'``, ``'deploy'``, ``'onnx'`` (the deploy structure in
    onnxruntime) or ``'baseline'``: what candidate ``name`` runs."""
    return {REPMLP_TRAIN: 'train', REPMLP_DEPLOY: 'deploy',
            REPMLP_ONNX: 'onnx'}.get(name, 'baseline')


def build_candidate(name: str, settings: BenchmarkSettings) -> Candidate:
    """Build candidate ``name`` on ``settings.device``.

    The RepMLPNet candidates are built from the same seed, so
    ``repmlp-deploy`` is exactly the re-parameterized ``repmlp-train``, and
    ``repmlp-onnx`` holds that same deploy segmentor (exported per input
    size by the runner, with :func:`onnx_session`).
    """
    cfg = Config(dict(model=model_config(name, settings.arch,
                                         settings.head_channels)))
    # Nested builds (data preprocessor, losses) resolve in MMSegmentation's
    # scope, as in the inference API.
    init_default_scope('mmseg')
    torch.manual_seed(settings.seed)
    model = build_segmentor(cfg)
    model = revert_sync_batchnorm(model).eval()
    reference = None
    if name in REPMLP_CANDIDATES:
        # A fresh BatchNorm is the identity and would hide a wrong fusion
        # from the train/deploy agreement check.
        randomize_norm_stats_(model, settings.seed)
    if name in (REPMLP_DEPLOY, REPMLP_ONNX):
        reference = model
        model = reparameterize_model(model)
        if not is_deployed(model):
            raise RuntimeError('reparameterize_model left training-time '
                               'modules in the RepMLPNet segmentor.')
    to_device(settings, model, reference)
    return Candidate(name, model, describe_backbone(name, settings.arch),
                     structure_of(name), reference)


def onnx_session(model: nn.Module, shape: Shape, batch: int,
                 num_threads: Optional[int] = None) -> Any:
    """Export ``model`` (a deploy segmentor) and open it in onnxruntime.

    The graph (raw BGR pixels in, logits at the input size out, see
    :mod:`mmseg_repmlp.export.onnx`) goes to a temporary file, removed once
    the session has loaded it. It has a fixed ``shape``; ``export_onnx``'s
    fixed graphs take one image, so for ``batch > 1`` the graph is exported
    with dynamic axes instead.

    Args:
        model (nn.Module): The deploy segmentor (left unchanged).
        shape (tuple[int, int]): Input ``(H, W)``.
        batch (int): Images per call.
        num_threads (int, optional): onnxruntime intra-op threads.

    Returns:
        onnxruntime.InferenceSession: On the CPU execution provider.
    """
    with tempfile.TemporaryDirectory(prefix='repmlp_onnx_') as folder:
        path = osp.join(folder, 'segmentor.onnx')
        export_onnx(model, path, shape, dynamic=batch > 1)
        return ort_session(path, num_threads=num_threads)
