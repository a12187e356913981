"""tools/analysis/plot_run.py: the pictures of a training run."""
import json
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from mmseg_repmlp.cli.plot_run import (
    BARS_SIZE,
    CURVES_SIZE,
    PANEL_WIDTH,
    PICTURES,
    ValResults,
    choose_images,
    colourize,
    evaluator_ignore_index,
    read_scalars,
)

from ..conftest import CONFIG, run, tool


def _plot(*args, check=True):
    return run([*tool('analysis/plot_run.py'), *args], check=check)


def _last_table_iou(log, name):
    """The IoU of class ``name`` in the last per-class table of a log."""
    rows = re.findall(rf'^\|\s*{re.escape(name)}\s*\|\s*([0-9.]+)\s*\|',
                      log, flags=re.M)
    assert rows, name
    return float(rows[-1])


def test_plot_tool_draws_the_three_pictures(trained, tmp_path):
    work, log = trained
    out = tmp_path / 'pictures'
    done = _plot(work, '--checkpoint', work / 'iter_4_deploy.pth',
                 '--out-dir', out)
    sizes = {}
    for kind, name in PICTURES.items():
        path = out / name
        assert path.stat().st_size > 5000, kind  # drawn, not blank
        sizes[kind] = Image.open(path).size
        assert f'Written {path}' in done.stdout
    assert sizes['curves'] == CURVES_SIZE
    assert sizes['per_class_iou'] == BARS_SIZE
    # Two val images of 128x256: two rows of cells a third of the width.
    width, height = sizes['panel']
    assert width == PANEL_WIDTH
    assert 2 * PANEL_WIDTH // 6 < height < 3 * PANEL_WIDTH // 6 + 200
    panel = np.asarray(Image.open(out / PICTURES['panel']).convert('RGB'))
    assert len(np.unique(panel.reshape(-1, 3), axis=0)) > 50  # a photo too
    # The IoU is MMSegmentation's, measured on the same images as the
    # validation the run logged at iteration 4, with the same weights.
    logged = {r['step']: r['mIoU'] for r in read_scalars(str(work))[0]
              if 'mIoU' in r}
    measured = float(re.search(r'mIoU of iter_4_deploy.pth on 2 val '
                               r'images: ([0-9.]+)', done.stdout).group(1))
    assert abs(measured - logged[4]) <= 0.05
    # Class by class too: the table MMSegmentation logged at iteration 4.
    per_class = re.search(r'IoU of the ground-truth classes: (.*)',
                          done.stdout).group(1)
    for item in per_class.split(', '):
        name, value = item.rsplit(' ', 1)
        assert abs(float(value) - _last_table_iou(log, name)) <= 0.2, item
    assert 'Failed to add' not in done.stdout + done.stderr


def test_plot_tool_tta_measures_what_the_test_tool_does(
        trained, tiny_cityscapes, tmp_path):
    """--tta (the demo's): the IoU with multi-scale + flip, class by class,
    is what ``tools/test.py --tta`` reports for the same checkpoint."""
    work, _ = trained
    ckpt = work / 'iter_4_deploy.pth'
    out = tmp_path / 'pictures'
    done = _plot(work, '--checkpoint', ckpt, '--out-dir', out, '--tta')
    assert Image.open(out / PICTURES['per_class_iou']).size == BARS_SIZE
    tested = run([*tool('test.py'), CONFIG, ckpt, '--tta', '--work-dir',
                  tmp_path / 'test', '--cfg-options',
                  f'test_dataloader.dataset.data_root={tiny_cityscapes}'])
    log = tested.stdout + tested.stderr
    measured = float(re.search(
        r'mIoU of iter_4_deploy.pth on 2 val images with --tta: ([0-9.]+)',
        done.stdout).group(1))
    assert measured == float(re.findall(r'mIoU: ([0-9.]+)', log)[-1])
    per_class = re.search(r'IoU of the ground-truth classes with --tta: '
                          r'(.*)', done.stdout).group(1)
    for item in per_class.split(', '):
        name, value = item.rsplit(' ', 1)
        assert abs(float(value) - _last_table_iou(log, name)) <= 0.01, item


def test_plot_tool_defaults_and_overwrite(trained, tmp_path):
    """The config and checkpoint are found in the work dir; drawn pictures
    are replaced only with --force."""
    work, _ = trained
    out = tmp_path / 'pictures'
    out.mkdir()
    (out / PICTURES['curves']).write_bytes(b'mine')
    refused = _plot(work, '--out-dir', out, check=False)
    assert refused.returncode != 0 and '--force' in refused.stderr
    assert (out / PICTURES['curves']).read_bytes() == b'mine'
    done = _plot(work, '--out-dir', out, '--force', '--max-images', '1')
    assert re.search(r'mIoU of best_mIoU_iter_\d_deploy.pth on 1 val image',
                     done.stdout)
    assert Image.open(out / PICTURES['curves']).size == CURVES_SIZE


def test_scalars_of_the_trained_run(trained):
    work, _ = trained
    records, resumed = read_scalars(str(work))
    assert [r['step'] for r in records if 'loss' in r] == [1, 2, 3, 4]
    assert [r['step'] for r in records if 'mIoU' in r] == [2, 4]
    assert resumed == []


def _write_run(work, timestamp, records, tail=''):
    path = work / timestamp / 'vis_data' / 'scalars.json'
    path.parent.mkdir(parents=True)
    path.write_text(''.join(json.dumps(r) + '\n' for r in records) + tail)


def _train(step, loss):
    return dict(lr=0.01, loss=loss, iter=step, step=step)


def test_scalars_of_resumed_runs_continue_the_curves(tmp_path):
    # The first run logged up to 50 and was killed mid-write; its last
    # checkpoint was at 40, so the second run logs 50 again.
    _write_run(tmp_path, '20260101_000000',
               [_train(10, 4.0), _train(20, 3.0), dict(mIoU=10.0, step=20),
                _train(30, 2.5), _train(40, 2.0), dict(mIoU=20.0, step=40),
                _train(50, 1.9)], tail='{"loss": 1.')
    _write_run(tmp_path, '20260101_010000',
               [_train(50, 1.8), _train(60, 1.7), dict(mIoU=30.0, step=60)])
    (tmp_path / '20260101_020000').mkdir()  # a test run: no scalars
    records, resumed = read_scalars(str(tmp_path))
    assert [(r['step'], r['loss']) for r in records if 'loss' in r] == \
        [(10, 4.0), (20, 3.0), (30, 2.5), (40, 2.0), (50, 1.8), (60, 1.7)]
    assert [(r['step'], r['mIoU']) for r in records if 'mIoU' in r] == \
        [(20, 10.0), (40, 20.0), (60, 30.0)]
    assert resumed == [50]
    # A run started afresh in the same folder replaces all before it.
    _write_run(tmp_path, '20260102_000000', [_train(10, 3.3)])
    records, resumed = read_scalars(str(tmp_path))
    assert [r['loss'] for r in records] == [3.3] and resumed == []


def test_panel_images_show_the_most_classes():
    classes = [{0, 1}, {0, 1, 2}, {3}, {0, 2}, {4, 5}]
    assert choose_images(classes) == [1, 4, 2]
    assert choose_images(classes[:2]) == [1, 0]


@pytest.mark.parametrize('ignore_index', [255, 0])
def test_colourize_paints_the_palette_and_blacks_out_ignored(ignore_index):
    palette = np.array([[128, 64, 128], [244, 35, 232]], np.uint8)
    labels = np.array([[0, 1, 255]])
    rgb = colourize(labels, palette, ignore_index)
    expected = [palette[0], palette[1], [0, 0, 0]]
    if ignore_index == 0:
        expected[0] = [0, 0, 0]
    assert rgb.tolist() == [[list(map(int, c)) for c in expected]]


def test_val_results_leave_ignored_pixels_out():
    results = ValResults(num_classes=3, ignore_index=255)
    gt = torch.tensor([[0, 0, 1, 255], [1, 1, 255, 255]])
    # Class 2 is predicted on ignored pixels only: no union, left out.
    pred = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 2]])
    results.add(pred, gt)
    iou = results.iou()
    assert iou[0] == pytest.approx(1 / 3) and iou[1] == pytest.approx(2 / 4)
    assert np.isnan(iou[2])
    assert results.miou() == pytest.approx(round((1 / 3 + 1 / 2) * 50, 2))
    assert results.gt_class_ids() == [0, 1]
    assert results.gt_classes == [{0, 1}]


def test_ignore_index_is_the_evaluators():
    def cfg(evaluator):
        return Config(dict(val_evaluator=evaluator))

    assert evaluator_ignore_index(cfg(dict(type='IoUMetric'))) == 255
    assert evaluator_ignore_index(
        cfg(dict(type='IoUMetric', ignore_index=0))) == 0
    assert evaluator_ignore_index(cfg([
        dict(type='CityscapesMetric', output_dir='x'),
        dict(type='IoUMetric', ignore_index=3)])) == 3
