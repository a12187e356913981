"""What a user looks at: painted test images, TensorBoard, the demo's
pictures and output without warnings a user cannot act on."""
import os
import re
import subprocess
import warnings

import numpy as np
import pytest
from PIL import Image

from mmseg_repmlp.cli.plot_run import PICTURES

from ..conftest import CONFIG, REPO, run, tool, train_options

#: Warnings of MMEngine's visualizer that the demo used to end with: a file
#: backend without a save_dir ("Failed to add <class ...LocalVisBackend'>,
#: please provide the `save_dir` argument"), a visualization hook switched
#: off, a second runner handed the first one's visualizer.
VISUALIZER_WARNINGS = ('Failed to add', 'The draw is False',
                       'the method `get_instance` should not accept')


def _no_visualizer_warnings(output):
    found = [w for w in VISUALIZER_WARNINGS if w in output]
    assert not found, found


def test_show_dir_paints_every_test_image(trained, tiny_cityscapes,
                                          tmp_path):
    work, _ = trained
    show = tmp_path / 'show'
    done = run([*tool('test.py'), CONFIG, work / 'iter_4_deploy.pth',
                '--work-dir', tmp_path / 'work', '--show-dir', show,
                '--cfg-options',
                f'test_dataloader.dataset.data_root={tiny_cityscapes}'])
    painted = sorted((show / 'vis_data' / 'vis_image').glob('test_*.png'))
    val = sorted((tiny_cityscapes / 'leftImg8bit' / 'val').rglob('*.png'))
    assert len(painted) == len(val) == 2
    for picture, image in zip(painted, val):
        assert image.name in picture.name
        # Ground truth | prediction, side by side, each at the image's size.
        height, width = np.asarray(Image.open(image)).shape[:2]
        assert np.asarray(Image.open(picture)).shape == (height, 2 * width,
                                                         3)
    _no_visualizer_warnings(done.stdout + done.stderr)


def test_show_result_pyplot_asks_for_no_file_backend(trained,
                                                     tiny_cityscapes,
                                                     tmp_path):
    from mmseg_repmlp.apis import (
        inference_model,
        init_model,
        show_result_pyplot,
    )
    work, _ = trained
    image = str(sorted((tiny_cityscapes / 'leftImg8bit' /
                        'val').rglob('*.png'))[0])
    model = init_model(CONFIG, str(work / 'iter_4_deploy.pth'), 'cpu')
    result = inference_model(model, image)
    out = tmp_path / 'overlay.png'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        drawn = show_result_pyplot(model, image, result, show=False,
                                   out_file=str(out))
    assert not [str(w.message) for w in caught
                if 'save_dir' in str(w.message)]
    assert out.is_file() and drawn.shape[:2] == (128, 256)


def test_image_demo_output_has_no_visualizer_warning(trained,
                                                     tiny_cityscapes,
                                                     tmp_path):
    work, _ = trained
    image = sorted((tiny_cityscapes / 'leftImg8bit' / 'val').rglob('*.png'))[0]
    done = run([*tool('image_demo.py'), image, CONFIG,
                work / 'iter_4_deploy.pth', '--out-file',
                tmp_path / 'overlay.png'])
    _no_visualizer_warnings(done.stdout + done.stderr)
    assert 'build_loss' not in done.stderr  # an inference-only model


def _tensorboard_config(tmp_path):
    """The demo config with the documented switch: the runtime base
    replaced by configs/_base_/tensorboard.py."""
    source = REPO / 'configs' / 'demo' / CONFIG.rsplit('/', 1)[1]
    text = source.read_text()
    runtime = "'mmseg::_base_/default_runtime.py'"
    assert text.count(runtime) == 1
    text = text.replace(runtime, "'../_base_/tensorboard.py'")
    # The copy lives elsewhere: its relative bases point at the repo's.
    text = text.replace("'../_base_/", f"'{REPO}/configs/_base_/")
    config = tmp_path / 'tensorboard_config.py'
    config.write_text(text)
    return config


def test_tensorboard_switch_writes_event_files(tiny_cityscapes, tmp_path):
    import tensorboard  # noqa: F401  a test requirement: fail, never skip
    work = tmp_path / 'work'
    run([*tool('train.py'), _tensorboard_config(tmp_path), '--work-dir',
         work, *train_options(tiny_cityscapes, 2, 2)])
    vis_data = [p.parent for p in work.glob('*/vis_data/scalars.json')]
    assert len(vis_data) == 1, list(work.rglob('*'))
    events = list(vis_data[0].glob('events.out.tfevents.*'))
    assert len(events) == 1 and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing import event_accumulator
    logged = event_accumulator.EventAccumulator(
        str(vis_data[0])).Reload().Tags()['scalars']
    assert {'loss', 'mIoU'} <= set(logged), logged


@pytest.mark.slow
def test_demo_draws_its_pictures_and_resumes(tmp_path):
    """Two short demos in one work dir (about 5 minutes on 2 CPU cores):
    the second resumes the first and redraws the pictures; neither output
    holds a visualizer warning, and each ends with the summary."""
    work = tmp_path / 'demo'
    args = [*tool('demo.py'), '--work-dir', work, '--num-train', '4',
            '--num-val', '5']
    # One stream, in the order a user sees it.
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    outputs = []
    for iters in (2, 4):
        done = subprocess.run([str(a) for a in [*args, '--max-iters', iters]],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env,
                              timeout=900)
        output = done.stdout
        assert done.returncode == 0, output[-5000:]
        outputs.append(output)
        _no_visualizer_warnings(output)
        summary = output.split('\nDemo finished.\n')[1].rstrip('\n')
        assert all(line.startswith('  ') for line in summary.splitlines()), \
            summary
        # Both tests of the deploy checkpoint: whole images, and --tta.
        assert re.search(r'val mIoU \(deploy model.*: [0-9.]+\n', summary)
        assert re.search(r'val mIoU, multi-scale \+ flip \(--tta\): '
                         r'[0-9.]+\n', summary), summary
        for name in PICTURES.values():
            assert (work / name).stat().st_size > 5000, name
        assert list((work / 'train').glob(
            '*/vis_data/vis_image/val_*.png')), 'no painted val image'
    assert 'resumed epoch: 0, iter: 2' in outputs[1]
    assert 'kept the dataset an earlier run generated' in outputs[1]
    assert 'images generated: 9/9' in outputs[0]
