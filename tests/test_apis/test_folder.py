"""Folder inference pieces: discovery, output planning, batching by size,
label maps and their PNG depth."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_repmlp.apis import (
    find_images,
    inference_model,
    init_model,
    iter_segmented,
    label_map,
    plan_outputs,
)
from mmseg_repmlp.apis import folder as folder_module
from mmseg_repmlp.apis.folder import label_dtype, write_png

from ..conftest import CONFIG


def _touch(root, *rels):
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b'')


def test_images_are_found_sorted_and_outputs_skipped(tmp_path):
    # Created out of order: the listing must not depend on the file system.
    _touch(tmp_path, 'z.png', 'b/2.jpg', 'a.JPG', 'b/1.tif', 'notes.txt',
           '.hidden.png', '.git/x.png', 'out/old.png')
    images, others = find_images(str(tmp_path))
    assert images == ['a.JPG', 'z.png'] and others == ['notes.txt']
    images, _ = find_images(str(tmp_path), recursive=True,
                            exclude=[str(tmp_path / 'out')])
    assert images == ['a.JPG', 'b/1.tif', 'b/2.jpg', 'z.png']


def test_outputs_keep_the_relative_path_and_never_collide(tmp_path):
    out = tmp_path / 'out'
    _touch(out, 'b/1.png')
    jobs = plan_outputs(str(tmp_path), ['a.jpg', 'a.png', 'b/1.tif'],
                        str(out), str(out / 'overlays'))
    a_jpg, a_png, b_1 = jobs
    assert a_jpg.outputs == dict(label=str(out / 'a.png'),
                                 overlay=str(out / 'overlays' / 'a.png'))
    assert a_png.error and 'a.jpg' in a_png.error and not a_png.outputs
    assert b_1.kept == [str(out / 'b' / '1.png')]
    assert b_1.outputs == dict(overlay=str(out / 'overlays' / 'b' / '1.png'))
    forced = plan_outputs(str(tmp_path), ['b/1.tif'], str(out), force=True)
    assert forced[0].outputs == dict(label=str(out / 'b' / '1.png'))
    with pytest.raises(ValueError, match='not the input folder'):
        plan_outputs(str(tmp_path), ['a.png'], str(tmp_path))


def test_more_than_256_classes_are_written_as_16_bit(tmp_path):
    assert label_dtype(256) == np.uint8 and label_dtype(257) == np.uint16
    sample = SegDataSample(pred_sem_seg=PixelData(
        data=torch.tensor([[[0, 255], [256, 299]]])))
    labels = label_map(sample, 300)
    write_png(str(tmp_path / 'labels.png'), labels)
    back = cv2.imread(str(tmp_path / 'labels.png'), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, [[0, 255], [256, 299]])


def test_batches_hold_one_size_and_results_keep_the_input_order(
        trained, tmp_path, monkeypatch):
    work, _ = trained
    model = init_model(CONFIG, str(work / 'iter_4_deploy.pth'), device='cpu')
    rng = np.random.default_rng(0)
    sizes = {'0.png': (64, 96), '1.png': (64, 96), '2.png': None,
             '3.png': (48, 80), '4.png': (64, 96), '5.png': (64, 96),
             '6.png': (64, 96)}
    for name, size in sizes.items():
        if size is None:
            (tmp_path / name).write_text('not an image')
        else:
            cv2.imwrite(str(tmp_path / name),
                        rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    calls = []

    def recording(model, images):
        calls.append([img.shape[:2] for img in images])
        return inference_model(model, images)

    monkeypatch.setattr(folder_module, 'inference_model', recording)
    paths = [str(tmp_path / name) for name in sizes]
    out = list(iter_segmented(model, paths, batch_size=2))
    assert [item.path for item in out] == paths
    assert [item.error is not None for item in out] == [
        size is None for size in sizes.values()]
    assert calls == [[(64, 96)] * 2, [(48, 80)], [(64, 96)] * 2, [(64, 96)]]
    for item in out:
        if item.error is None:
            single = inference_model(model, item.image)
            assert torch.equal(item.result.pred_sem_seg.data,
                               single.pred_sem_seg.data)
