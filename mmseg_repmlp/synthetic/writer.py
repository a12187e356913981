"""What both dataset writers share: arguments, splits, the output layout.

A writer only ever deletes or overwrites files in a folder that carries its
marker file, so that pointing it at a folder holding real data (for example
the real Cityscapes) cannot destroy anything:

* a missing or empty folder is used;
* a folder with the marker of a complete generation is kept as it is (its
  summary is returned) unless ``overwrite`` is given, in which case what the
  earlier generation wrote is removed and written again;
* a folder with the partial marker (an interrupted generation) is redone;
* any other non-empty folder, or a file, is refused.

The marker, written last, holds the generation's summary.
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from .sample import Sample, make_sample, sample_rng

__all__ = ['GenerationArguments', 'DatasetLayout', 'write_dataset']

#: Split order; a split's position also seeds its images' random streams.
SPLITS = ('train', 'val')


@dataclass(frozen=True)
class GenerationArguments:
    """What a generation is asked for; recorded in the marker file."""

    num_train: int
    num_val: int
    height: int
    width: int
    seed: int

    def check(self) -> None:
        """Raises ValueError unless every field is an integer in range."""
        for name, low in (('num_train', 1), ('num_val', 0), ('height', 64),
                          ('width', 64), ('seed', 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(
                    value, (int, np.integer)) or value < low:
                raise ValueError(f'{name} must be an integer >= {low}, '
                                 f'got {value!r}')


#: ``write_sample(root, args, split, i, sample, label)`` writes image ``i``
#: of a split; ``label`` is the sample's label map in the layout's ids.
SampleWriter = Callable[
    [str, GenerationArguments, str, int, Sample, np.ndarray], None]
#: ``split_summary(args, split) -> (name, summary)`` of a written split.
SplitSummary = Callable[[GenerationArguments, str], Tuple[str, dict]]


@dataclass(frozen=True)
class DatasetLayout:
    """How the scenes are stored in the layout of one real dataset.

    Attributes:
        dataset: Name of the real dataset (``'Cityscapes'``).
        writer: Name of the public function that writes it (for errors).
        marker: Name of the marker file of a complete generation.
        dirs: Top-level folders a generation (or the preparation run on it)
            writes; removed before a generation.
        files: Top-level files likewise (the marker is added to them).
        label_ids: Label id of each scene label (Cityscapes label name).
        class_names: Class name of each label id, for the statistics.
        void_id: Label id of pixels without a class, including those that no
            object covers.
        void_name: Name of ``void_id`` in the statistics.
        ids_key: Summary key of the ``{class name: id}`` of the classes
            present.
        format_version: Recorded in the summary; bumped whenever the output
            for a given seed changes.
        write_sample: Writes one sample.
        split_summary: Describes one written split.
    """

    dataset: str
    writer: str
    marker: str
    dirs: Tuple[str, ...]
    files: Tuple[str, ...]
    label_ids: Mapping[str, int]
    class_names: Mapping[int, str]
    void_id: int
    void_name: str
    ids_key: str
    format_version: int
    write_sample: SampleWriter
    split_summary: SplitSummary

    @property
    def partial_marker(self) -> str:
        """Written first and removed at the end, so an interrupted run is
        recognised as ours (and can be redone) instead of being refused."""
        return f'{self.marker}.partial'


def split_samples(args: GenerationArguments
                  ) -> Iterator[Tuple[str, Iterator[Sample]]]:
    """Yields ``('train' | 'val', that split's samples)`` for every split
    with images.

    Image ``i`` of a split depends only on ``(seed, split, i)``, so asking
    for more images keeps the first ones unchanged.
    """
    for split_index, split in enumerate(SPLITS):
        num = getattr(args, f'num_{split}')
        if num > 0:
            yield split, _samples(args, split_index, num)


def _samples(args: GenerationArguments, split_index: int,
             num: int) -> Iterator[Sample]:
    for i in range(num):
        rng = sample_rng(args.seed, split_index, i)
        yield make_sample(rng, args.height, args.width)


def write_dataset(root: str, layout: DatasetLayout, args: GenerationArguments,
                  overwrite: bool,
                  progress: Optional[Callable[[], None]] = None) -> dict:
    """Checks the arguments and ``root``, then writes the dataset there.

    Args:
        root: Output layout.
        layout: The dataset layout to write.
        args: The generation's arguments.
        overwrite: Regenerate an earlier generation in ``root``.
        progress: Called after each sample written (a progress bar's
            update); not called when an earlier generation is kept.

    Returns:
        The summary written into the marker file, plus ``root`` and
        ``generated`` (False when an earlier generation was kept).
    """
    args.check()
    root = os.path.abspath(os.fspath(root))
    previous = _check_root(root, layout, overwrite)
    if previous is not None:
        return _reuse(root, layout, previous, args)
    os.makedirs(root, exist_ok=True)
    partial = os.path.join(root, layout.partial_marker)
    with open(partial, 'w', encoding='utf-8') as f:
        f.write('generation in progress\n')
    _clear_previous(root, layout)
    summary = _write_splits(root, layout, args, progress)
    # The marker is written last: its presence means "complete and ours".
    # It holds no absolute path, so identical runs give identical bytes.
    with open(os.path.join(root, layout.marker), 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write('\n')
    os.remove(partial)
    return dict(summary, root=root, generated=True)


def _write_splits(root: str, layout: DatasetLayout,
                  args: GenerationArguments,
                  progress: Optional[Callable[[], None]] = None) -> dict:
    """Writes every sample; returns the generation's summary."""
    pixel_counts = np.zeros(256, np.int64)
    splits = {}
    for split, samples in split_samples(args):
        for i, sample in enumerate(samples):
            label = sample.label_map(layout.label_ids, layout.void_id)
            pixel_counts += np.bincount(label.ravel(), minlength=256)
            layout.write_sample(root, args, split, i, sample, label)
            if progress is not None:
                progress()
        name, splits[name] = layout.split_summary(args, split)
    classes, class_ids, fractions = _class_statistics(pixel_counts, layout)
    return {
        'format_version': layout.format_version,
        'arguments': asdict(args),
        'seed': args.seed,
        'height': args.height,
        'width': args.width,
        'splits': splits,
        'classes': classes,
        layout.ids_key: class_ids,
        'class_pixel_fraction': fractions,
    }


def _check_root(root: str, layout: DatasetLayout,
                overwrite: bool) -> Optional[dict]:
    """Applies the safety rules; returns the previous summary to reuse."""
    title = f'synthetic {layout.dataset}'
    if os.path.exists(root) and not os.path.isdir(root):
        raise FileExistsError(
            f'{root!r} exists and is not a directory; choose another root '
            f'for the {title} dataset.')
    if not os.path.isdir(root) or not os.listdir(root):
        return None
    marker = os.path.join(root, layout.marker)
    partial = os.path.join(root, layout.partial_marker)
    if os.path.isfile(marker) and not overwrite:
        with open(marker, encoding='utf-8') as f:
            return json.load(f)
    if not (os.path.isfile(marker) or os.path.isfile(partial)):
        raise FileExistsError(
            f'Refusing to write the {title} dataset into '
            f'{root!r}: the folder is not empty and has no {layout.marker!r} '
            f'marker, so it was not made by {layout.writer} and '
            f'may hold your own data (for example the real {layout.dataset}).'
            ' Pass an empty or non-existent folder instead.')
    return None


def _reuse(root: str, layout: DatasetLayout, previous: dict,
           args: GenerationArguments) -> dict:
    """The kept generation's summary; warns if it was made differently."""
    requested = asdict(args)
    recorded = {k: previous.get('arguments', {}).get(k) for k in requested}
    if recorded != requested:
        warnings.warn(
            f'{root!r} already holds a synthetic {layout.dataset} dataset '
            f'made with {recorded}, not the requested {requested}; keeping '
            'it. Pass overwrite=True (--overwrite) to regenerate it.', stacklevel=2)
    return dict(previous, root=root, generated=False)


def _clear_previous(root: str, layout: DatasetLayout) -> None:
    """Removes what an earlier generation (or the preparation step run on
    it) wrote, so stale images or labels cannot survive a rerun.

    Only called when ``root`` carries one of the writer's markers.
    """
    for name in layout.dirs:
        path = os.path.join(root, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
    for name in layout.files + (layout.marker, ):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            os.remove(path)


def _class_statistics(
        pixel_counts: np.ndarray, layout: DatasetLayout
) -> Tuple[List[str], Dict[str, int], Dict[str, float]]:
    """Classes present in a generation and their share of all pixels.

    Returns:
        ``(classes, class_ids, class_pixel_fraction)``: the names of the
        classes present by id, their ids, and the share of all pixels of each
        and of the void id.
    """
    total = int(pixel_counts.sum())
    by_id = sorted((i, name) for i, name in layout.class_names.items()
                   if i != layout.void_id and pixel_counts[i] > 0)
    void_fraction = round(float(pixel_counts[layout.void_id]) / total, 6)
    fractions = dict([(name, round(float(pixel_counts[i]) / total, 6))
                      for i, name in by_id] +
                     [(layout.void_name, void_fraction)])
    return ([name for _, name in by_id], {name: i for i, name in by_id},
            fractions)
