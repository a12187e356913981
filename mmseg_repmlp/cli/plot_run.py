"""``tools/analysis/plot_run.py``: pictures of a training run.

    python tools/analysis/plot_run.py WORK_DIR [--config CONFIG]
        [--checkpoint CKPT] [--out-dir DIR] [--tta] [--force]

Writes three PNGs into ``--out-dir`` (default: ``WORK_DIR``):

- ``val_panel.png``: three val images | ground truth | prediction of the
  deploy model, in the dataset's palette (the checkpoint's
  ``dataset_meta``), with a legend of the classes shown. The three are
  chosen to show as many ground-truth classes as they can;
- ``training_curves.png``: training loss and val mIoU against iteration,
  from what MMEngine logged in ``WORK_DIR/<timestamp>/vis_data/scalars.json``
  (one folder per run: a resumed run continues the curves of the run it
  resumed, and replaces what that run logged after the checkpoint);
- ``per_class_iou.png``: the IoU of every class of the val ground truth;
  with ``--tta``, beside it the IoU with multi-scale + flip testing (the
  config's ``tta_model`` and ``tta_pipeline``, as ``tools/test.py --tta``).

The IoU is measured here, by running the checkpoint over the val set with
MMSegmentation's own IoU maths (``IoUMetric``), so the mIoU is the one
``tools/test.py`` prints. It is not read from the training log: MMSegmentation
logs per-class IoU only as a text table, of the last validation rather than
of the checkpoint drawn, and that table does not say which classes the
ground truth has. The same pass gives the panel's predictions.

Defaults: the config the runner saved in ``WORK_DIR`` (with the run's
``--cfg-options``, so its data root), and the newest ``best_*_deploy.pth``,
else the newest ``*_deploy.pth``, else the last checkpoint (re-parameterized
on loading).
"""
import argparse
import glob
import json
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.utils import ProgressBar
from mmseg.evaluation import IoUMetric
from mmseg.registry import DATASETS, MODELS
from PIL import Image

from ..apis import init_model
from ..utils.fileio import atomic_path, refuse_to_overwrite
from ..utils.images import read_image

DPI = 100
#: Pixel sizes of the pictures (width, height); the panel's height follows
#: the images' aspect ratio and the number of rows.
PANEL_WIDTH = 960
CURVES_SIZE = (960, 400)
BARS_SIZE = (960, 420)
PICTURES = dict(panel='val_panel.png', curves='training_curves.png',
                per_class_iou='per_class_iou.png')
PANEL_IMAGES = 3
IGNORE_COLOUR = (0, 0, 0)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dir', help='work dir of a training run')
    parser.add_argument('--config', default=None,
                        help='default: the config the runner saved in '
                        'WORK_DIR')
    parser.add_argument('--checkpoint', default=None,
                        help='default: the newest best_*_deploy.pth in '
                        'WORK_DIR, else the newest *_deploy.pth, else the '
                        'last checkpoint')
    parser.add_argument('--out-dir', default=None,
                        help='where the PNGs go (default: WORK_DIR)')
    parser.add_argument('--device', default=None,
                        help='default: cuda:0 where available, else cpu')
    parser.add_argument('--max-images', type=int, default=None,
                        help='measure on the first N val images only '
                        '(default: all)')
    parser.add_argument('--tta', action='store_true',
                        help='also measure with multi-scale + flip testing '
                        '(the config\'s tta_pipeline, as tools/test.py '
                        '--tta) and draw it beside each class\'s bar')
    parser.add_argument('--force', action='store_true',
                        help='replace existing pictures')
    return parser.parse_args(argv)


# --- inputs -----------------------------------------------------------------
def _newest(pattern: str) -> Optional[str]:
    files = sorted(glob.glob(pattern), key=osp.getmtime)
    return files[-1] if files else None


def find_config(work_dir: str) -> str:
    """The config the runner saved in ``work_dir`` (the newest)."""
    config = _newest(osp.join(work_dir, '*.py'))
    if config is None:
        raise FileNotFoundError(
            f'{work_dir!r} holds no config saved by a run; pass --config.')
    return config


def find_checkpoint(work_dir: str) -> str:
    """The best deploy checkpoint, else the newest deploy one, else the
    last checkpoint MMEngine recorded."""
    for pattern in ('best_*_deploy.pth', '*_deploy.pth'):
        found = _newest(osp.join(work_dir, pattern))
        if found:
            return found
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last, encoding='utf-8') as f:
            path = f.read().strip()
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'{work_dir!r} holds no checkpoint; pass --checkpoint.')


def _read_json_lines(path: str) -> List[dict]:
    records = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a run that was killed mid-write
            if isinstance(record, dict) and 'step' in record:
                records.append(record)
    return records


def read_scalars(work_dir: str) -> Tuple[List[dict], List[int]]:
    """What MMEngine's ``LocalVisBackend`` logged, over every run.

    Each run writes ``WORK_DIR/<timestamp>/vis_data/scalars.json``, one JSON
    record a line with its ``step`` (the iteration). A resumed run starts
    from a checkpoint, which may be older than the last iteration the run
    before logged: what a later run logged from its first step on replaces
    what earlier runs logged there. A run started afresh in the same folder
    (step 1 again) therefore replaces everything before it.

    Args:
        work_dir (str): The work dir of the training.

    Returns:
        tuple[list[dict], list[int]]: The records in order of step, and the
        first step of every run that continued an earlier one.
    """
    records: List[dict] = []
    resumed = []
    # Timestamp folders (YYYYMMDD_HHMMSS) sort in the order they were run.
    for path in sorted(glob.glob(
            osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        run = _read_json_lines(path)
        if not run:
            continue
        start = min(r['step'] for r in run)
        records = [r for r in records if r['step'] < start]
        resumed = [step for step in resumed if step < start]
        if records:
            resumed.append(start)
        records += run
    records.sort(key=lambda r: r['step'])  # stable: train before val
    return records, resumed


# --- measuring --------------------------------------------------------------
def evaluator_ignore_index(cfg: Config) -> int:
    """The label ``IoUMetric`` leaves out in the config's val evaluator (one
    metric or a list), as ``tools/test.py`` measures; 255 by default."""
    metrics = cfg.get('val_evaluator') or {}
    if not isinstance(metrics, (list, tuple)):
        metrics = [metrics]
    for metric in metrics:
        if metric.get('type') == 'IoUMetric':
            return metric.get('ignore_index', 255)
    return 255


class ValResults:
    """Per-class areas over the val set, as ``IoUMetric`` sums them, and the
    ground-truth classes of every image."""

    def __init__(self, num_classes: int, ignore_index: int):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # intersect, union, prediction, label
        self.areas = torch.zeros(4, num_classes, dtype=torch.float64)
        self.gt_classes: List[set] = []

    def add(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        self.areas += torch.stack(IoUMetric.intersect_and_union(
            pred, gt, self.num_classes, self.ignore_index)).double()
        self.gt_classes.append(_classes_in(gt, self.num_classes))

    def iou(self) -> np.ndarray:
        """IoU of every class; NaN for a class neither present nor
        predicted, which ``mIoU`` leaves out as MMSegmentation does."""
        intersect, union = self.areas[0].numpy(), self.areas[1].numpy()
        with np.errstate(divide='ignore', invalid='ignore'):
            return intersect / union

    def miou(self) -> float:
        """MMSegmentation's mIoU (``IoUMetric``, rounded as it prints it)."""
        return float(np.round(np.nanmean(self.iou()) * 100, 2))

    def gt_class_ids(self) -> List[int]:
        return [int(c) for c in np.flatnonzero(self.areas[3].numpy() > 0)]


def _classes_in(labels: torch.Tensor, num_classes: int) -> set:
    ids = torch.unique(labels).tolist()
    return {int(c) for c in ids if 0 <= c < num_classes}


@torch.no_grad()
def predict(model: torch.nn.Module, sample: dict
            ) -> Tuple[str, torch.Tensor, torch.Tensor]:
    """The image path, predicted and ground-truth labels ``(H, W)`` of one
    dataset sample, at the image's own size."""
    out = model.test_step(pseudo_collate([sample]))[0]
    pred = out.pred_sem_seg.data.squeeze(0).cpu()
    gt = out.gt_sem_seg.data.squeeze(0).cpu().to(pred)
    return out.img_path, pred, gt


def measure(model: torch.nn.Module, dataset, ignore_index: int,
            max_images: Optional[int] = None) -> ValResults:
    """Run ``model`` over the dataset (its first ``max_images``)."""
    num = len(dataset) if max_images is None else min(max_images,
                                                      len(dataset))
    results = ValResults(len(model.dataset_meta['classes']), ignore_index)
    print(f'Measuring on {num} val images')
    bar = ProgressBar(num)
    for i in range(num):
        _, pred, gt = predict(model, dataset[i])
        results.add(pred, gt)
        bar.update()
    print()
    return results


def choose_images(gt_classes: Sequence[set], k: int = PANEL_IMAGES
                  ) -> List[int]:
    """``k`` images that together show the most ground-truth classes
    (greedily: each adds the most classes not shown yet; the first such)."""
    chosen: List[int] = []
    shown: set = set()
    for _ in range(min(k, len(gt_classes))):
        best = max((i for i in range(len(gt_classes)) if i not in chosen),
                   key=lambda i: (len(gt_classes[i] - shown),
                                  len(gt_classes[i]), -i))
        chosen.append(best)
        shown |= gt_classes[best]
    return chosen


# --- drawing ----------------------------------------------------------------
def _figure(width: int, height: int) -> Figure:
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)  # no pyplot, no display: works headless
    return fig


def save_figure(fig: Figure, path: str, force: bool) -> str:
    """Write ``fig`` as a PNG of its exact size, atomically.

    In 256 colours: flat label maps, text and lines need few, and a photo
    row of the panel still looks right, at a third of the size of an RGB
    PNG (the README shows the panel).
    """
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    image = Image.fromarray(rgb).quantize(256, dither=Image.Dither.NONE)
    with atomic_path(path, overwrite=force) as tmp:
        image.save(tmp, format='PNG', optimize=True)
    return path


def colourize(labels: np.ndarray, palette: np.ndarray,
              ignore_index: int) -> np.ndarray:
    """RGB image of a label map: the palette's colour of each class, black
    where the label is ignored (or outside the classes)."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(palette)] = palette
    lut[ignore_index % 256] = IGNORE_COLOUR
    return lut[labels.astype(np.int64).clip(0, 255)]


def draw_panel(rows: Sequence[Tuple[str, np.ndarray, np.ndarray,
                                    np.ndarray]],
               classes: Sequence[str], palette: np.ndarray,
               ignore_index: int, title: str) -> Figure:
    """Image | ground truth | prediction, one row per ``(name, image, gt,
    pred)``, and a legend of the classes shown."""
    shown = sorted(set().union(*(
        _classes_in(torch.from_numpy(labels), len(classes))
        for _, _, gt, pred in rows for labels in (gt, pred))))
    has_ignored = any((gt == ignore_index).any() for _, _, gt, _ in rows)
    legend = [Patch(facecolor=np.asarray(palette[c]) / 255, edgecolor='k',
                    label=classes[c]) for c in shown]
    if has_ignored:
        legend.append(Patch(facecolor=np.asarray(IGNORE_COLOUR) / 255,
                            edgecolor='k', label='ignored'))
    columns = 3
    cell_w = PANEL_WIDTH // columns
    height, width = rows[0][1].shape[:2]
    cell_h = round(cell_w * height / width)
    head, caption = 44, 18  # title; each row's file name
    legend_rows = -(-len(legend) // 6)
    legend_h = 12 + 22 * legend_rows
    total_h = head + len(rows) * (cell_h + caption) + legend_h
    fig = _figure(PANEL_WIDTH, total_h)
    fig.suptitle(title, y=1 - 6 / total_h, va='top', fontsize=10)
    for col, name in enumerate(('image', 'ground truth', 'prediction')):
        fig.text((col + 0.5) / columns, 1 - 30 / total_h, name,
                 ha='center', va='center', fontsize=10)
    for row, (name, image, gt, pred) in enumerate(rows):
        top = head + row * (cell_h + caption)
        pictures = (image, colourize(gt, palette, ignore_index),
                    colourize(pred, palette, ignore_index))
        for col, picture in enumerate(pictures):
            ax = fig.add_axes((col / columns, 1 - (top + cell_h) / total_h,
                               1 / columns, cell_h / total_h))
            ax.imshow(picture, interpolation='nearest', aspect='auto')
            ax.set_axis_off()
        fig.text(0.5, 1 - (top + cell_h + caption / 2) / total_h, name,
                 ha='center', va='center', fontsize=8)
    fig.legend(handles=legend, loc='lower center', ncol=min(6, len(legend)),
               fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0))
    return fig


def draw_curves(records: Sequence[dict], resumed: Sequence[int],
                title: str) -> Figure:
    """Training loss (and its parts) and val mIoU against iteration."""
    fig = _figure(*CURVES_SIZE)
    loss_ax, miou_ax = fig.subplots(1, 2)
    train = [r for r in records if 'loss' in r]
    parts = sorted({k for r in train for k in r if 'loss' in k} - {'loss'})
    for key in ['loss', *parts]:
        points = [(r['step'], r[key]) for r in train if key in r]
        if points:
            steps, values = zip(*points)
            loss_ax.plot(steps, values, label=key, marker='.',
                         markersize=3, linewidth=2 if key == 'loss' else 1)
    val = [(r['step'], r[key]) for r in records for key in r
           if key == 'mIoU' or key.endswith('/mIoU')]
    if val:
        steps, values = zip(*val)
        miou_ax.plot(steps, values, marker='o', color='tab:green')
        best = int(np.argmax(values))
        miou_ax.annotate(f'{values[best]:.2f}', (steps[best], values[best]),
                         textcoords='offset points', xytext=(0, 6),
                         ha='center', fontsize=8)
        miou_ax.set_ylim(0, max(100, max(values) + 5))
    for ax, name, points in ((loss_ax, 'training loss', train),
                             (miou_ax, 'val mIoU (%)', val)):
        ax.set_title(name, fontsize=10)
        ax.set_xlabel('iteration')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if not points:
            ax.text(0.5, 0.5, 'nothing logged', ha='center',
                    transform=ax.transAxes)
        for step in resumed:
            ax.axvline(step, color='grey', linestyle=':', linewidth=1)
    if train:
        loss_ax.legend(fontsize=8)
    if resumed:
        miou_ax.text(1, -0.18, 'dotted: a resumed run starts',
                     transform=miou_ax.transAxes, ha='right', fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.17, top=0.85,
                        wspace=0.2)
    return fig


def _false_only(results: ValResults) -> int:
    """How many classes are predicted but absent from the ground truth
    (mIoU counts them, at IoU 0)."""
    return int(np.sum((results.areas[3] == 0).numpy() &
                      (results.areas[2] > 0).numpy()))


def draw_per_class_iou(results: ValResults, classes: Sequence[str],
                       palette: np.ndarray, title: str,
                       tta: Optional[ValResults] = None) -> Figure:
    """Bars of the IoU of the ground-truth classes, in the palette's
    colours; with ``tta``, its IoU as a hatched bar beside each."""
    fig = _figure(*BARS_SIZE)
    ax = fig.add_subplot()
    ids = results.gt_class_ids()
    colours = [np.asarray(palette[c]) / 255 for c in ids]
    series = [('whole images', results, {})]
    if tta is not None:
        series.append(('multi-scale + flip (--tta)', tta, dict(hatch='//')))
    width = 0.8 / len(series)
    for k, (label, measured, style) in enumerate(series):
        iou = measured.iou() * 100
        offset = (k - (len(series) - 1) / 2) * width
        bars = ax.bar(np.arange(len(ids)) + offset, [iou[c] for c in ids],
                      width=width, color=colours, edgecolor='k', label=label,
                      **style)
        ax.bar_label(bars, fmt='%.1f', fontsize=8 if tta is None else 7)
    ax.set_xticks(range(len(ids)), [classes[c] for c in ids], rotation=30,
                  ha='right', fontsize=8)
    # Room above the bars for the legend's one row.
    ax.set_ylim(0, 105 if tta is None else 116)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel('IoU (%)')
    ax.grid(axis='y', alpha=0.3)
    if tta is not None:
        ax.legend(handles=[Patch(facecolor='w', edgecolor='k', label=label,
                                 **style) for label, _, style in series],
                  fontsize=8, loc='upper right', ncol=2)
    # mIoU also counts classes the model predicts but the ground truth lacks
    # (IoU 0); say how many, so that it can be read against the bars.
    note = ', '.join(f'{label} {measured.miou():.2f}'
                     for label, measured, _ in series)
    note = f'mIoU (as tools/test.py): {note}'
    false_only = max(_false_only(measured) for _, measured, _ in series)
    if false_only:
        note += f'; it also counts up to {false_only} predicted class(es) ' \
            'the ground truth lacks, at IoU 0'
    ax.set_title(f'{title}\n{note}', fontsize=10)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.22, top=0.86)
    return fig


# --- the tool ---------------------------------------------------------------
def _panel_rows(model: torch.nn.Module, dataset, chosen: Sequence[int]
                ) -> List[Tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    rows = []
    for i in chosen:
        path, pred, gt = predict(model, dataset[i])
        image = read_image(path)[..., ::-1]  # BGR -> RGB
        rows.append((osp.basename(path), image, gt.numpy(), pred.numpy()))
    return rows


def _val_dataset(cfg: Config, tta: bool = False):
    dataset = cfg.val_dataloader.dataset
    if tta:
        dataset = dict(dataset, pipeline=cfg.tta_pipeline)
    return DATASETS.build(dataset)


def tta_of(model: torch.nn.Module, cfg: Config) -> torch.nn.Module:
    """``model`` inside the config's test-time augmentation model (as
    ``tools/test.py --tta`` builds it)."""
    missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
    if missing:
        raise ValueError(f'--tta needs {" and ".join(missing)} in the '
                         'config (MMSegmentation\'s dataset bases define '
                         'both).')
    tta = MODELS.build(dict(cfg.tta_model, module=model))
    tta.dataset_meta = model.dataset_meta
    return tta.eval()


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    work_dir = args.work_dir
    out_dir = args.out_dir or work_dir
    paths = {k: osp.join(out_dir, name) for k, name in PICTURES.items()}
    try:
        for path in paths.values():  # before the long work, not after
            refuse_to_overwrite(path, args.force)
        config = args.config or find_config(work_dir)
        checkpoint = args.checkpoint or find_checkpoint(work_dir)
        cfg = Config.fromfile(config)
        model = init_model(cfg, checkpoint, device=args.device)
        dataset = _val_dataset(model.cfg)
        if len(dataset) == 0:
            raise ValueError(f'The val set of {config} has no images.')
        if args.tta:
            tta_model = tta_of(model, model.cfg)
            tta_dataset = _val_dataset(model.cfg, tta=True)
    except (OSError, ValueError) as err:
        sys.exit(f'error: {err}')
    ignore_index = evaluator_ignore_index(cfg)
    classes = model.dataset_meta['classes']
    palette = np.asarray(model.dataset_meta['palette'], np.uint8)
    name = osp.basename(checkpoint)

    results = measure(model, dataset, ignore_index, args.max_images)
    tta = None
    if args.tta:
        print('With multi-scale + flip (--tta):')
        tta = measure(tta_model, tta_dataset, ignore_index, args.max_images)
    num = len(results.gt_classes)
    measured = f'{num} val image' + ('s' if num > 1 else '')
    rows = _panel_rows(model, dataset, choose_images(results.gt_classes))
    save_figure(draw_panel(rows, classes, palette, ignore_index,
                           f'{name}: val images'), paths['panel'],
                args.force)
    records, resumed = read_scalars(work_dir)
    save_figure(draw_curves(records, resumed, osp.abspath(work_dir)),
                paths['curves'], args.force)
    save_figure(
        draw_per_class_iou(results, classes, palette,
                           f'Per-class IoU of {name} on {measured} '
                           '(ground-truth classes)', tta),
        paths['per_class_iou'], args.force)
    for label, measured_by in (('', results), (' with --tta', tta)):
        if measured_by is None:
            continue
        print(f'mIoU of {name} on {measured}{label}: '
              f'{measured_by.miou():.2f}')
        iou = measured_by.iou() * 100
        print(f'IoU of the ground-truth classes{label}: ' + ', '.join(
            f'{classes[c]} {iou[c]:.2f}' for c in results.gt_class_ids()))
    for path in paths.values():
        print(f'Written {path}')
    return dict(paths, mIoU=results.miou(),
                tta_mIoU=None if tta is None else tta.miou(),
                checkpoint=checkpoint, images=[row[0] for row in rows])
