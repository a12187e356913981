"""Images of a config's training set, prepared as its test pipeline
prepares them: INT8 calibration data and held-out images to check reduced
precision on."""
from typing import List

import numpy as np

from .wrapper import PIXEL_NEUTRAL_STEPS

#: Steps of the test pipeline that read labels or pack samples: the images
#: alone are needed here.
_SKIPPED = ('LoadAnnotations', 'PackSegInputs')


def _step_type(step) -> str:
    kind = step.get('type')
    return getattr(kind, '__name__', str(kind)).rsplit('.', 1)[-1]


def training_image_paths(cfg) -> List[str]:
    """Paths of the images of ``cfg.train_dataloader.dataset`` (built
    through MMSegmentation's registry, without its pipeline), in order."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset_cfg = cfg.train_dataloader.dataset.copy()
    dataset_cfg['pipeline'] = []
    dataset_cfg['lazy_init'] = False
    dataset = DATASETS.build(dataset_cfg)
    return [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]


def pipeline_images(cfg, paths: List[str]) -> List[np.ndarray]:
    """``(1, 3, H, W)`` float32 pixel batches of ``paths``, each read and
    resized by the config's test pipeline (its ``Resize``; labels are not
    read): what the model sees at test time, and what a graph with the
    resize inside leaves as it is."""
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    steps = [step for step in cfg.get('test_pipeline',
                                      cfg.test_dataloader.dataset.pipeline)
             if _step_type(step) not in _SKIPPED]
    if not steps or _step_type(steps[0]) not in PIXEL_NEUTRAL_STEPS:
        raise ValueError('The test pipeline does not start by loading the '
                         'image; cannot read calibration images with it.')
    pipeline = Compose(steps)
    batches = []
    for path in paths:
        img = pipeline(dict(img_path=path, seg_fields=[]))['img']
        batches.append(np.ascontiguousarray(
            img.transpose(2, 0, 1)[None], dtype=np.float32))
    return batches


def split_training_images(cfg, calib: int, held_out: int):
    """``(calibration, held_out)`` pixel batches: the first ``calib``
    training images and the next ``held_out`` (never the same images).

    Raises:
        ValueError: The training set has fewer than ``calib + held_out``
            images.
    """
    paths = training_image_paths(cfg)
    if calib < 0 or held_out < 1:
        raise ValueError('Need calib >= 0 and held_out >= 1 images; got '
                         f'{calib} and {held_out}.')
    if len(paths) < calib + held_out:
        raise ValueError(
            f'The training set has {len(paths)} images; {calib} for '
            f'calibration and {held_out} held out for the check need '
            f'{calib + held_out}: pass fewer (--calib-images, '
            '--check-images).')
    images = pipeline_images(cfg, paths[:calib + held_out])
    return images[:calib], images[calib:]
