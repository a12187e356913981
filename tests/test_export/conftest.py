import cv2
import pytest

from ..conftest import CONFIG, run, tool

#: Image sizes (H, W) other than the training crop (128x256) the toolkit's
#: labels are compared at: not a multiple of 32 (both orientations), tiny,
#: the test scale's own size and a Cityscapes frame.
SIZES = [(333, 517), (517, 333), (32, 32), (256, 512), (1024, 2048)]


def val_image(root):
    return sorted((root / 'leftImg8bit' / 'val').rglob('*.png'))[0]


@pytest.fixture(scope='session')
def deployed(trained):
    """The deploy segmentor of the 4-iteration run, on the CPU."""
    from mmseg_repmlp.apis import init_model
    work, _ = trained
    return init_model(CONFIG, str(work / 'iter_4_deploy.pth'), device='cpu')


@pytest.fixture(scope='session')
def sized_images(tiny_cityscapes, tmp_path_factory):
    """A validation image as PNG files of each of :data:`SIZES`."""
    folder = tmp_path_factory.mktemp('sized')
    img = cv2.imread(str(val_image(tiny_cityscapes)))
    for h, w in SIZES:
        cv2.imwrite(str(folder / f'{h}x{w}.png'), cv2.resize(img, (w, h)))
    return folder


def _export(trained, tiny_cityscapes, path, *options):
    work, _ = trained
    done = run([*tool('export_onnx.py'), CONFIG, work / 'iter_4_deploy.pth',
                path, '--image', val_image(tiny_cityscapes), *options])
    return path, done.stdout


@pytest.fixture(scope='session')
def resized_onnx(trained, tiny_cityscapes, tmp_path_factory):
    """``(path, stdout)`` of the default export: no options, so a dynamic
    logits graph with the test-time resize inside."""
    return _export(trained, tiny_cityscapes,
                   tmp_path_factory.mktemp('onnx') / 'resized.onnx')


@pytest.fixture(scope='session')
def native_onnx(trained, tiny_cityscapes, tmp_path_factory):
    """``(path, stdout)`` of a dynamic ``--native-resolution`` export (the
    model at the input size: the graph of before that option)."""
    return _export(trained, tiny_cityscapes,
                   tmp_path_factory.mktemp('onnx') / 'native.onnx',
                   '--dynamic', '--native-resolution', '--agreement-sizes',
                   '333x517', '256x512')
