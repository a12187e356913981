"""tools/segment_folder.py on a folder with good, nested, truncated and
non-image files; tools/image_demo.py pointing to it for a folder."""
import shutil

import cv2
import numpy as np
import pytest

from mmseg_repmlp.apis import inference_model, init_model, read_image

from ..conftest import CONFIG, run, tool

GOOD = ('a/x.png', 'b/c/y.png')
BAD = ('cut.png', 'notes.jpg')


@pytest.fixture(scope='module')
def folder(tiny_cityscapes, tmp_path_factory):
    """Two images in nested folders, a truncated PNG, a text file named
    like a JPEG, and a text file the tool leaves alone."""
    root = tmp_path_factory.mktemp('images')
    sources = sorted((tiny_cityscapes / 'leftImg8bit' / 'val').rglob('*.png'))
    for rel, src in zip(GOOD, sources, strict=False):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, root / rel)
    data = sources[0].read_bytes()
    (root / 'cut.png').write_bytes(data[:len(data) // 2])
    (root / 'notes.jpg').write_text('not an image')
    (root / 'readme.txt').write_text('not an image either')
    return root


@pytest.fixture(scope='module')
def model(trained):
    work, _ = trained
    return init_model(CONFIG, str(work / 'iter_4_deploy.pth'), device='cpu')


def _segment(folder, trained, out, *extra, check=False):
    work, _ = trained
    return run([*tool('segment_folder.py'), folder, CONFIG,
                work / 'iter_4_deploy.pth', '--out-dir', out, '--device',
                'cpu', *extra], check=check)


@pytest.fixture(scope='module')
def segmented(folder, trained, tmp_path_factory):
    out = tmp_path_factory.mktemp('segmented')
    done = _segment(folder, trained, out, '--recursive', '--overlay',
                    '--batch-size', 2)
    return out, done


def test_labels_are_named_after_inputs_and_match_inference(
        folder, segmented, model):
    out, done = segmented
    written = sorted(p.relative_to(out).as_posix()
                     for p in out.rglob('*') if p.is_file())
    assert written == sorted(
        list(GOOD) + [f'overlays/{rel}' for rel in GOOD])
    for rel in GOOD:
        labels = cv2.imread(str(out / rel), cv2.IMREAD_UNCHANGED)
        image = read_image(str(folder / rel))
        assert labels.dtype == np.uint8 and labels.shape == image.shape[:2]
        expected = inference_model(model, str(folder / rel))
        np.testing.assert_array_equal(
            labels, expected.pred_sem_seg.data[0].numpy())


def test_bad_files_are_reported_and_the_run_goes_on(segmented):
    _, done = segmented
    assert done.returncode == 1
    for rel in BAD:
        assert rel in done.stderr  # as it happens
        assert rel in done.stdout.split('images failed:')[1]  # and at the end
    assert 'truncated' in done.stdout and 'not an image' in done.stdout
    assert 'Segmented 2 of 4 images' in done.stdout
    assert 'images/s' in done.stdout
    assert 'readme.txt' in done.stdout  # left alone, and said so


def test_overlays_paint_the_labels_on_the_image(folder, segmented, model):
    out, _ = segmented
    for rel in GOOD:
        overlay = cv2.imread(str(out / 'overlays' / rel))
        image = read_image(str(folder / rel))
        labels = cv2.imread(str(out / rel), cv2.IMREAD_UNCHANGED)
        # MMSegmentation's SegLocalVisualizer blend, in BGR.
        colours = np.array(model.dataset_meta['palette'])[:, ::-1][labels]
        np.testing.assert_array_equal(
            overlay, (image * 0.5 + colours * 0.5).astype(np.uint8))
        assert not np.array_equal(overlay, image)


def test_existing_outputs_are_kept_unless_forced(folder, trained, tmp_path):
    good = tmp_path / 'good'
    shutil.copytree(folder / 'a', good)
    out = tmp_path / 'out'
    mine = out / 'x.png'
    mine.parent.mkdir()
    mine.write_bytes(b'my own file')
    done = _segment(good, trained, out, check=True)
    assert mine.read_bytes() == b'my own file'
    assert '1 images already have all their outputs' in done.stdout
    assert '--force' in done.stdout
    _segment(good, trained, out, '--force', check=True)
    assert cv2.imread(str(mine), cv2.IMREAD_UNCHANGED).dtype == np.uint8
    assert not list(out.glob('.*'))  # no temporary file left behind


def test_output_folder_must_not_be_the_input_folder(folder, trained):
    done = _segment(folder / 'a', trained, folder / 'a')
    assert done.returncode != 0
    assert 'not the input folder' in done.stderr


def test_image_demo_points_to_the_folder_tool(folder, trained):
    work, _ = trained
    done = run([*tool('image_demo.py'), folder, CONFIG,
                work / 'iter_4_deploy.pth'], check=False)
    assert done.returncode != 0
    assert 'is a folder' in done.stderr
    assert 'tools/segment_folder.py' in done.stderr
