"""Cityscapes preparation: polygon annotations -> ``labelTrainIds`` images.

MMSegmentation trains on ``*_gtFine_labelTrainIds.png`` images (19 classes,
255 = ignore), which are not part of the Cityscapes download: they are made
from the ``*_gtFine_polygons.json`` annotations with the official
``cityscapesscripts`` toolkit. This module does that step (the same one as
MMSegmentation's ``tools/dataset_converters/cityscapes.py``) for the real
dataset and for the synthetic one of :mod:`mmseg_repmlp.synthetic` alike::

    <root>/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png      (input)
    <root>/gtFine/<split>/<city>/<name>_gtFine_polygons.json      (input)
    <root>/gtFine/<split>/<city>/<name>_gtFine_labelTrainIds.png  (written)
    <root>/<split>.txt   one ``<city>/<name>`` per line, sorted   (written)

Only the standard library is imported at module level; ``cityscapesscripts``
is imported when a conversion actually runs.
"""
from __future__ import annotations

import glob
import json
import multiprocessing
import os
import warnings
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

__all__ = ['convert_cityscapes']

POLYGON_SUFFIX = '_gtFine_polygons.json'
LABEL_SUFFIX = '_gtFine_labelTrainIds.png'
IMAGE_SUFFIX = '_leftImg8bit.png'

_HOW_TO_GET = (
    'Download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip from '
    'https://www.cityscapes-dataset.com/downloads/ and unzip both into the '
    'same folder, or make a small synthetic dataset in that layout with '
    '`python tools/dataset_converters/make_synthetic_cityscapes.py <root>`; '
    'then run `python tools/dataset_converters/cityscapes.py <root>`.')


def _stem(path: str, suffix: str) -> str:
    """``<city>/<name>`` of a file in ``<split>/<city>/<name><suffix>``."""
    city = os.path.basename(os.path.dirname(path))
    return f'{city}/{os.path.basename(path)[:-len(suffix)]}'


def _convert_one(json_path: str) -> str:
    """Rasterises one polygon file next to itself; returns the output path.

    The label image is first written under a temporary name in the same
    folder and then renamed, so an interrupted run never leaves a truncated
    ``labelTrainIds`` file that a later run would skip as already done.
    """
    try:
        from cityscapesscripts.preparation.json2labelImg import json2labelImg
    except ImportError as e:  # pragma: no cover - depends on environment
        raise ImportError(
            'Converting Cityscapes annotations needs the official toolkit: '
            '`pip install cityscapesscripts`.') from e
    out_path = json_path[:-len(POLYGON_SUFFIX)] + LABEL_SUFFIX
    folder, name = os.path.split(out_path)
    # The '.png' ending matters: PIL picks the format from the extension.
    tmp_path = os.path.join(folder, f'.{name}.{os.getpid()}.tmp.png')
    try:
        json2labelImg(json_path, tmp_path, 'trainIds')
        os.replace(tmp_path, out_path)
    except SystemExit as e:
        # json2labelImg calls sys.exit() on unknown labels. SystemExit would
        # kill a pool worker silently and leave the pool waiting forever, so
        # turn it into an ordinary exception that reaches the caller.
        raise ValueError(
            f'cityscapesscripts could not convert {json_path!r} (exit code '
            f'{e.code}); labels unknown to cityscapesscripts.helpers.labels: '
            f'{_unknown_labels(json_path)}') from None
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
    return out_path


def _unknown_labels(json_path: str) -> List[str]:
    """Label names of a polygon file that the toolkit does not know.

    Only used to explain a failed conversion, with the toolkit's own rule
    (a trailing 'group', as in 'cargroup', is dropped before the lookup).
    """
    from cityscapesscripts.helpers.labels import name2label
    with open(json_path, encoding='utf-8') as f:
        names = {str(obj.get('label')) for obj in json.load(f)['objects']}
    return sorted(
        n for n in names if n not in name2label and
        not (n.endswith('group') and n[:-len('group')] in name2label))


def _write_text(path: str, lines: Iterable[str]) -> None:
    """Writes a split list atomically (temporary file + rename)."""
    tmp_path = f'{path}.{os.getpid()}.tmp'
    try:
        with open(tmp_path, 'w', encoding='utf-8') as f:
            f.writelines(f'{line}\n' for line in lines)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def _find_split_files(root: str, split: str,
                      suffix: str, top: str) -> List[str]:
    return sorted(
        glob.glob(os.path.join(glob.escape(os.path.join(root, top, split)),
                               '*', '*' + suffix)))


def convert_cityscapes(root: str,
                       nproc: int = 1,
                       splits: Union[str, Sequence[str]] = ('train', 'val',
                                                            'test'),
                       overwrite: bool = False,
                       progress: Optional[Callable[[], None]] = None
                       ) -> dict:
    """Prepares a Cityscapes-layout folder for MMSegmentation training.

    For every ``gtFine/<split>/<city>/*_gtFine_polygons.json`` of the
    requested splits, writes ``*_gtFine_labelTrainIds.png`` beside it with
    ``cityscapesscripts.preparation.json2labelImg.json2labelImg(..,
    'trainIds')``, then writes ``<root>/<split>.txt`` listing the split's
    images as sorted ``<city>/<name>`` lines (``name`` without the
    ``_leftImg8bit.png`` suffix), the format MMSegmentation's own converter
    writes. Splits without a ``gtFine/<split>`` folder (often ``test``) are
    skipped. All checks run before anything is written.

    Args:
        root: Cityscapes root, the folder holding ``gtFine/`` and
            ``leftImg8bit/``.
        nproc: Number of worker processes for the conversion (1 = in
            process).
        splits: Split names to process (a single name is accepted too).
        overwrite: Also regenerate label images that already exist (by
            default they are kept, so an interrupted run can be resumed).
        progress: Called after each label image written, e.g. a progress
            bar's ``update`` (the real dataset has 5000 of them).

    Returns:
        Summary dict: ``root``; ``splits[split]`` = ``{'num_annotations',
        'num_images', 'num_converted', 'num_skipped', 'split_file'}`` for each
        processed split (``num_images`` is None when ``leftImg8bit/<split>``
        is absent); ``skipped_splits`` (requested splits without annotations);
        totals ``num_converted`` and ``num_skipped``.

    Raises:
        FileNotFoundError: If ``root`` or ``root/gtFine`` does not exist, no
            polygon file is found for the requested splits, or an image in
            ``leftImg8bit/<split>`` has no polygon file.
        ValueError: For a bad ``nproc`` or split name, or an annotation that
            ``cityscapesscripts`` cannot convert.
    """
    splits = _check_arguments(splits, nproc)
    root = _check_root(os.path.abspath(os.fspath(root)))
    polygons = _find_polygons(root, splits)
    num_images = {split: _count_images(root, split, polygons.get(split, []))
                  for split in splits}
    todo = {split: [p for p in files if overwrite or not _is_converted(p)]
            for split, files in polygons.items()}
    _convert_all([p for paths in todo.values() for p in paths], nproc,
                 progress)
    for split, files in polygons.items():
        _write_split_list(root, split, files, num_images[split])
    return _summary(root, splits, polygons, todo, num_images)


def _summary(root: str, splits: Sequence[str],
             polygons: Dict[str, List[str]], todo: Dict[str, List[str]],
             num_images: Dict[str, Optional[int]]) -> dict:
    """The summary :func:`convert_cityscapes` returns."""
    summary_splits = {
        split: dict(num_annotations=len(files),
                    num_images=num_images.get(split),
                    num_converted=len(todo[split]),
                    num_skipped=len(files) - len(todo[split]),
                    split_file=os.path.join(root, f'{split}.txt'))
        for split, files in polygons.items()
    }
    return dict(
        root=root,
        splits=summary_splits,
        skipped_splits=[split for split in splits if split not in polygons],
        num_converted=sum(s['num_converted'] for s in summary_splits.values()),
        num_skipped=sum(s['num_skipped'] for s in summary_splits.values()),
    )


def _check_arguments(splits: Union[str, Sequence[str]],
                     nproc: int) -> Tuple[str, ...]:
    """The split names as a tuple; raises ValueError for bad arguments."""
    if isinstance(splits, str):
        splits = (splits, )
    splits = tuple(splits)
    for split in splits:
        if not split or os.sep in split or split in ('.', '..') or (
                os.altsep and os.altsep in split):
            raise ValueError(f'invalid split name {split!r}')
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f'nproc must be an integer >= 1, got {nproc!r}')
    return splits


def _check_root(root: str) -> str:
    """Returns ``root`` if it holds a ``gtFine/`` folder, else explains."""
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f'Cityscapes root {root!r} does not exist or is not a folder. '
            'Expected a folder containing gtFine/<split>/<city>/'
            f'*{POLYGON_SUFFIX} and leftImg8bit/<split>/<city>/'
            f'*{IMAGE_SUFFIX}. {_HOW_TO_GET}')
    gt_dir = os.path.join(root, 'gtFine')
    if not os.path.isdir(gt_dir):
        raise FileNotFoundError(
            f'No gtFine/ folder in {root!r} (found: '
            f'{sorted(os.listdir(root))[:10]}). Expected '
            f'{gt_dir}/<split>/<city>/*{POLYGON_SUFFIX}; point this at the '
            'folder that contains gtFine/ and leftImg8bit/ directly. '
            f'{_HOW_TO_GET}')
    return root


def _find_polygons(root: str, splits: Sequence[str]) -> Dict[str, List[str]]:
    """Polygon files of each split that has any; raises if none has."""
    polygons: Dict[str, List[str]] = {}
    for split in splits:
        files = _find_split_files(root, split, POLYGON_SUFFIX, 'gtFine')
        if files:
            polygons[split] = files
    if not polygons:
        raise FileNotFoundError(
            f'No annotation files {os.path.join(root, "gtFine")}/<split>/'
            f'<city>/*{POLYGON_SUFFIX} found for splits {list(splits)}. '
            f'{_HOW_TO_GET}')
    return polygons


def _count_images(root: str, split: str,
                  polygons: Sequence[str]) -> Optional[int]:
    """Number of images of a split (None without ``leftImg8bit/<split>``).

    Every image must have an annotation, otherwise the split lists (made
    from the annotations) would silently drop images; this usually means
    gtFine and leftImg8bit come from different downloads or extractions.
    """
    images = _find_split_files(root, split, IMAGE_SUFFIX, 'leftImg8bit')
    if not os.path.isdir(os.path.join(root, 'leftImg8bit', split)):
        return None
    annotated = {_stem(p, POLYGON_SUFFIX) for p in polygons}
    missing = [p for p in images if _stem(p, IMAGE_SUFFIX) not in annotated]
    if missing:
        first = missing[0]
        expected = os.path.join(
            root, 'gtFine', split, os.path.basename(os.path.dirname(first)),
            os.path.basename(first)[:-len(IMAGE_SUFFIX)] + POLYGON_SUFFIX)
        raise FileNotFoundError(
            f'{len(missing)} image(s) in {root}/leftImg8bit/{split} have '
            f'no polygon annotation, e.g. {first!r} needs {expected!r}. '
            'Unzip gtFine_trainvaltest.zip into the same root as '
            f'leftImg8bit, or pass only the splits you have (for '
            f'example --splits train val). {_HOW_TO_GET}')
    return len(images)


def _is_converted(json_path: str) -> bool:
    return os.path.isfile(json_path[:-len(POLYGON_SUFFIX)] + LABEL_SUFFIX)


def _convert_all(paths: Sequence[str], nproc: int,
                 progress: Optional[Callable[[], None]] = None) -> None:
    """Converts the polygon files, in ``nproc`` processes if more than 1."""
    progress = progress or (lambda: None)
    if nproc > 1 and len(paths) > 1:
        chunk = max(1, len(paths) // (nproc * 8))
        with multiprocessing.Pool(min(nproc, len(paths))) as pool:
            for _ in pool.imap_unordered(_convert_one, paths, chunk):
                progress()
    else:
        for path in paths:
            _convert_one(path)
            progress()


def _write_split_list(root: str, split: str, polygons: Sequence[str],
                      num_images: Optional[int]) -> None:
    """Writes ``<split>.txt``; warns when images are missing."""
    _write_text(os.path.join(root, f'{split}.txt'),
                sorted(_stem(p, POLYGON_SUFFIX) for p in polygons))
    if num_images is None:
        warnings.warn(
            f'{root}/leftImg8bit/{split} does not exist: labels and '
            f'{split}.txt were written, but training also needs the '
            'images (leftImg8bit_trainvaltest.zip).', stacklevel=2)
    elif num_images < len(polygons):
        warnings.warn(
            f'{split}: {len(polygons)} annotations but only '
            f'{num_images} images in {root}/leftImg8bit/{split}; '
            f'{split}.txt lists all annotated images.', stacklevel=2)
