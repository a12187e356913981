"""Inference on top of ``mmseg.apis``: either kind of checkpoint, any image."""
import copy
import warnings
from typing import Optional, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS
from mmseg.utils import get_classes, get_palette

from ..checkpoint.deploy_ckpt import (
    backbone_cfgs,
    build_segmentor,
    is_deploy_checkpoint,
    read_checkpoint,
    set_deploy,
)
from ..deploy import reparameterize_model
from ..models.utils.ckpt_load import load_strict
from .fast_inference import accelerate


def _resolve_device(device: Optional[str]) -> str:
    if device is None:
        return 'cuda:0' if torch.cuda.is_available() else 'cpu'
    if str(device).startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r}, but this PyTorch has no CUDA device "
            "(torch.cuda.is_available() is False); use device='cpu', or "
            'leave device out to pick one.')
    return device


def _config_dataset_meta(cfg: Config) -> dict:
    """Classes and palette of the config's test dataset (its ``metainfo``,
    else its class's ``METAINFO``), for a checkpoint without them."""
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    while 'dataset' in dataset:  # wrappers such as RepeatDataset
        dataset = dataset['dataset']
    metainfo = dict(dataset.get('metainfo') or {})
    cls = DATASETS.get(dataset.get('type', 'CityscapesDataset'))
    default = dict(getattr(cls, 'METAINFO', None) or {})
    meta = dict(classes=metainfo.get('classes', default.get('classes')),
                palette=metainfo.get('palette', default.get('palette')))
    if not meta['classes']:
        meta = dict(classes=get_classes('cityscapes'),
                    palette=get_palette('cityscapes'))
    return meta


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: Optional[str] = None,
               cfg_options: Optional[dict] = None,
               deploy: bool = True,
               *,
               compile: Union[bool, str] = False,
               cuda_graph: bool = False,
               dtype: Optional[Union[str, torch.dtype]] = None,
               channels_last: bool = False) -> torch.nn.Module:
    """Build a segmentor for inference and load a checkpoint strictly.

    Like :func:`mmseg.apis.init_model`, but a deploy checkpoint builds the
    deploy structure (from its meta), any mismatch between checkpoint and
    model is an error naming the keys, and a training-time checkpoint is
    re-parameterized after loading unless ``deploy=False``.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): Training or deploy checkpoint. Without
            one the model keeps its random initialisation. Default: None.
        device (str, optional): Device of the model. Default: None
            (``'cuda:0'`` where CUDA is available, else ``'cpu'``).
        cfg_options (dict, optional): Overrides merged into the config.
        deploy (bool): Return the deploy structure. Default: True.
        compile (bool | str): ``torch.compile`` the backbone and heads
            (a string is the compile mode). Default: False.
        cuda_graph (bool): Replay inference as CUDA graphs, one per input
            shape (CUDA only). Default: False.
        dtype (str | torch.dtype, optional): Autocast dtype of backbone and
            heads, ``'bf16'`` or ``'fp16'``. Default: None (fp32).
        channels_last (bool): Run backbone and heads in channels-last
            layout (faster convolutions on the CPU). Default: False.

    The last four are :func:`~mmseg_repmlp.apis.fast_inference.accelerate`
    (fp32 changes outputs only by float rounding).

    Returns:
        nn.Module: The segmentor in eval mode, with ``cfg`` and
        ``dataset_meta`` set as MMSegmentation's inferencers expect.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else \
        copy.deepcopy(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    ckpt = read_checkpoint(checkpoint) if checkpoint else None
    deployed_ckpt = ckpt is not None and is_deploy_checkpoint(ckpt)
    if deployed_ckpt and not deploy:
        raise ValueError(f'{checkpoint} is a deploy checkpoint; it cannot be '
                         'loaded with deploy=False.')
    device = _resolve_device(device)
    set_deploy(cfg, deploy=deployed_ckpt)
    for backbone in backbone_cfgs(cfg.model):  # TTA-wrapped configs too
        backbone['init_cfg'] = None
    cfg.model.pretrained = None
    cfg.model.train_cfg = None
    # inference_model builds the test pipeline from the default scope.
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = build_segmentor(cfg)
    meta = {}
    if ckpt is not None:
        load_strict(model, ckpt['state_dict'], checkpoint)
        meta = ckpt.get('meta') or {}
    if 'dataset_meta' in meta:
        model.dataset_meta = meta['dataset_meta']
    else:
        model.dataset_meta = _config_dataset_meta(cfg)
        if ckpt is not None:
            warnings.warn(
                f'{checkpoint} has no dataset_meta; using the classes and '
                "palette of the config's test dataset.", stacklevel=2)
    model.eval()
    if deploy and not deployed_ckpt:
        model = reparameterize_model(model, inplace=True)
    if deploy:
        set_deploy(cfg, deploy=True)
    model.cfg = cfg
    model.to(device)
    return accelerate(model, compile=compile, cuda_graph=cuda_graph,
                      dtype=dtype, channels_last=channels_last)


def inference_model(model: torch.nn.Module, img):
    """:func:`mmseg.apis.inference_model` that also reads grayscale, RGBA
    and 16-bit image files, and says clearly when a file is not an image.

    Args:
        model (nn.Module): From :func:`init_model`.
        img (str | np.ndarray | list): Image path(s) or BGR array(s).

    Returns:
        SegDataSample | list[SegDataSample]: As MMSegmentation returns.
    """
    from mmseg.apis import inference_model as mmseg_inference_model

    from ..utils.images import read_image
    if isinstance(img, (list, tuple)):
        img = [read_image(i) if isinstance(i, str) else i for i in img]
    elif isinstance(img, str):
        img = read_image(img)
    return mmseg_inference_model(model, img)


def show_result_pyplot(model: torch.nn.Module,
                       img: Union[str, np.ndarray],
                       result,
                       opacity: float = 0.5,
                       title: str = '',
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       wait_time: float = 0,
                       show: bool = True,
                       with_labels: Optional[bool] = True,
                       save_dir: Optional[str] = None,
                       out_file: Optional[str] = None) -> np.ndarray:
    """:func:`mmseg.apis.show_result_pyplot`, with no file backend to drop.

    MMSegmentation's version always gives its visualizer a
    ``LocalVisBackend``; without ``save_dir`` MMEngine drops it with a
    warning about ``save_dir`` that a user of ``out_file`` or ``show`` cannot
    act on. Here the backend is asked for only with a ``save_dir``.
    Arguments and the return value are MMSegmentation's.

    Returns:
        np.ndarray: The drawn RGB image.
    """
    import mmcv
    from mmengine.utils import mkdir_or_exist
    from mmseg.visualization import SegLocalVisualizer

    model = getattr(model, 'module', model)
    image = mmcv.imread(img, channel_order='rgb') if isinstance(img, str) \
        else img
    backends = []
    if save_dir is not None:
        mkdir_or_exist(save_dir)
        backends = [dict(type='LocalVisBackend')]
    visualizer = SegLocalVisualizer(vis_backends=backends, save_dir=save_dir,
                                    alpha=opacity)
    visualizer.dataset_meta = dict(classes=model.dataset_meta['classes'],
                                   palette=model.dataset_meta['palette'])
    visualizer.add_datasample(
        name=title, image=image, data_sample=result, draw_gt=draw_gt,
        draw_pred=draw_pred, wait_time=wait_time, out_file=out_file,
        show=show, with_labels=with_labels)
    return visualizer.get_image()
