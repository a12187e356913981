"""examples/onnxruntime/segment.py: the exported file alone, without torch,
MMSegmentation or mmseg_repmlp, gives the toolkit's labels."""
import importlib.util
import shutil
import sys

import cv2
import numpy as np
import onnxruntime  # noqa: F401  a hard test requirement: fail, never skip
import pytest

from ..conftest import REPO, env_without_pythonpath, run
from .conftest import SIZES

EXAMPLE = REPO / 'examples' / 'onnxruntime' / 'segment.py'
BLOCKED = ('torch', 'mmseg', 'mmcv', 'mmengine', 'mmseg_repmlp')


@pytest.fixture(scope='module')
def without_toolkit(tmp_path_factory):
    """An environment in which importing any of :data:`BLOCKED` fails: a
    folder first on PYTHONPATH whose packages raise ImportError."""
    root = tmp_path_factory.mktemp('blocked')
    for name in BLOCKED:
        (root / name).mkdir()
        (root / name / '__init__.py').write_text(
            "raise ImportError('blocked')\n")
    env = env_without_pythonpath()
    env['PYTHONPATH'] = str(root)
    return env


def test_the_toolkit_is_unimportable_there(without_toolkit):
    for name in BLOCKED:
        done = run([sys.executable, '-c', f'import {name}'],
                   env=without_toolkit, check=False)
        assert done.returncode != 0 and 'blocked' in done.stderr, name
    run([sys.executable, '-c', 'import cv2, numpy, onnxruntime'],
        env=without_toolkit)


def _inputs(folder, sized_images):
    """The sized images, after two bad files (sorted first, to see the
    example go on)."""
    folder.mkdir()
    for h, w in SIZES:
        shutil.copy(sized_images / f'{h}x{w}.png', folder)
    png = (sized_images / '32x32.png').read_bytes()
    (folder / '0_cut.png').write_bytes(png[:-30])
    ok, jpeg = cv2.imencode('.jpg', cv2.imread(str(sized_images /
                                                   '256x512.png')))
    (folder / '0_cut.jpg').write_bytes(jpeg.tobytes()[:-200])
    return folder


@pytest.mark.parametrize('graph', ['resized_onnx', 'native_onnx'])
def test_example_gives_the_toolkits_labels_without_torch(
        graph, request, without_toolkit, sized_images, deployed, tmp_path):
    from mmseg_repmlp.apis import inference_model
    model, _ = request.getfixturevalue(graph)
    inputs = _inputs(tmp_path / 'in', sized_images)
    out = tmp_path / 'out'
    done = run([sys.executable, EXAMPLE, model, inputs, '--out-dir', out],
               env=without_toolkit, check=False)
    # The bad files are named, skipped, and the run goes on.
    assert done.returncode == 1, done.stderr
    for name in ['0_cut.png', '0_cut.jpg']:
        assert f'skipped {inputs / name}: ' in done.stderr
    assert done.stderr.count('truncated') == 2, done.stderr
    assert f'{len(SIZES)} images segmented, 2 skipped' in done.stdout
    palette = np.array(deployed.dataset_meta['palette'], np.uint8)
    for h, w in SIZES:
        labels = cv2.imread(str(out / f'{h}x{w}_labels.png'),
                            cv2.IMREAD_UNCHANGED)
        assert labels.dtype == np.uint8 and labels.shape == (h, w)
        ref = inference_model(deployed, str(inputs / f'{h}x{w}.png'))
        agreement = (labels == ref.pred_sem_seg.data[0].numpy()).mean()
        assert agreement >= 0.999, (graph, h, w, agreement)
        colour = cv2.imread(str(out / f'{h}x{w}_color.png'))
        # The metadata's palette is RGB; cv2 wrote BGR.
        np.testing.assert_array_equal(colour, palette[labels][..., ::-1])


def _example_module():
    spec = importlib.util.spec_from_file_location('segment_example', EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_refuses_an_empty_image(resized_onnx):
    segmenter = _example_module().Segmenter(str(resized_onnx[0]))
    for shape in [(0, 0, 3), (4, 0, 3)]:
        with pytest.raises(ValueError, match='empty image'):
            segmenter.labels(np.zeros(shape, np.uint8))


def test_example_rejects_cut_files_an_opencv_decodes(tmp_path, monkeypatch):
    # cv2.imread decodes a cut-short JPEG (a warning on stderr only); this
    # OpenCV's imdecode refuses it, others decode it: then the end markers
    # tell.
    module = _example_module()
    monkeypatch.setattr(module.cv2, 'imdecode',
                        lambda data, flags: np.zeros((4, 6, 3), np.uint8))
    ok, jpeg = cv2.imencode('.jpg', np.zeros((4, 6, 3), np.uint8))
    ok, png = cv2.imencode('.png', np.zeros((4, 6, 3), np.uint8))
    for name, data in [('a.jpg', jpeg), ('a.png', png)]:
        path = tmp_path / name
        path.write_bytes(data.tobytes())
        assert module.read_bgr(str(path)).shape == (4, 6, 3)
        path.write_bytes(data.tobytes()[:-14])
        with pytest.raises(ValueError, match='truncated: the file ends'):
            module.read_bgr(str(path))
