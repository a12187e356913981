"""Segmenting many images: sorted discovery, same-size batches, label maps
and colour overlays written atomically, and one failure per file.

``tools/segment_folder.py`` is the command-line front end; the pieces are
usable on their own::

    from mmseg_repmlp.apis import (find_images, init_model, plan_outputs,
                                   segment_files)

    model = init_model(config, checkpoint)
    images, _ = find_images('frames', recursive=True)
    jobs = plan_outputs('frames', images, 'labels')
    for job in segment_files(model, jobs, batch_size=4):
        print(job.rel, job.error or 'ok')
"""
import collections
import concurrent.futures
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import (
    Callable,
    Deque,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
)

import cv2
import numpy as np
from torch import nn

from ..utils.fileio import atomic_write
from ..utils.images import read_image
from .inference import inference_model

#: What ``find_images`` picks up: the formats OpenCV decodes. Other files
#: are counted and left alone.
IMAGE_EXTENSIONS = frozenset(
    ('.bmp', '.dib', '.jpeg', '.jpg', '.jpe', '.jp2', '.png', '.webp',
     '.pbm', '.pgm', '.ppm', '.pnm', '.tif', '.tiff'))
LABEL = 'label'
OVERLAY = 'overlay'


def find_images(root: str,
                recursive: bool = False,
                exclude: Iterable[str] = ()) -> Tuple[List[str], List[str]]:
    """Image files in ``root``, as sorted paths relative to it.

    Hidden files and folders (a leading dot: ``.git``, macOS's ``._x.jpg``
    resource forks, the tools' own temporary files) are never images here.

    Args:
        root (str): The folder.
        recursive (bool): Also look in subfolders. Default: False.
        exclude (Iterable[str]): Folders not to enter (the output folders,
            so that a second run does not segment its own labels).

    Returns:
        tuple[list[str], list[str]]: The images, and the other files seen
        (not an image extension), both relative to ``root`` and sorted.
    """
    skip = {osp.realpath(path) for path in exclude}
    images, others = [], []
    for folder, dirs, files in os.walk(root):
        # Pruned in place, so os.walk does not enter them.
        dirs[:] = [] if not recursive else [
            d for d in dirs if not d.startswith('.')
            and osp.realpath(osp.join(folder, d)) not in skip
        ]
        for name in files:
            if name.startswith('.'):
                continue
            rel = osp.relpath(osp.join(folder, name), root)
            is_image = osp.splitext(name)[1].lower() in IMAGE_EXTENSIONS
            (images if is_image else others).append(rel)
    return sorted(images), sorted(others)


@dataclass
class FileJob:
    """One input image and what segmenting it writes.

    Attributes:
        rel (str): Its path relative to the input folder.
        src (str): Its path.
        outputs (dict[str, str]): Output kind (:data:`LABEL`,
            :data:`OVERLAY`) to the file to write.
        kept (list[str]): Outputs that exist and are kept (no ``force``).
        error (str, optional): Why it failed, once it has.
    """
    rel: str
    src: str
    outputs: Dict[str, str] = field(default_factory=dict)
    kept: List[str] = field(default_factory=list)
    error: Optional[str] = None


def output_name(rel: str, out_dir: str) -> str:
    """``out_dir/<rel without its extension>.png``: the output of input
    ``rel`` keeps its relative path and name, so outputs sort like inputs
    and name the image they come from."""
    return osp.join(out_dir, osp.splitext(rel)[0] + '.png')


def plan_outputs(root: str,
                 rels: Sequence[str],
                 out_dir: str,
                 overlay_dir: Optional[str] = None,
                 force: bool = False) -> List[FileJob]:
    """The outputs each input writes, with what cannot be written named.

    An output that exists is kept (listed in ``kept``, not written again)
    unless ``force``. Two inputs that would write the same file (``a.jpg``
    and ``a.png``) are an error of the later one, so neither output is
    silently replaced.

    Args:
        root (str): Input folder (``rels`` are relative to it).
        rels (Sequence[str]): Input images, e.g. from :func:`find_images`.
        out_dir (str): Folder of the label maps.
        overlay_dir (str, optional): Folder of the colour overlays; None
            writes none.
        force (bool): Replace existing outputs. Default: False.

    Returns:
        list[FileJob]: One per input, in the order of ``rels``.

    Raises:
        ValueError: An output would replace an input image (an output
            folder is the input folder).
    """
    inputs = {osp.realpath(osp.join(root, rel)) for rel in rels}
    folders = {LABEL: out_dir}
    if overlay_dir is not None:
        folders[OVERLAY] = overlay_dir
    claimed: Dict[str, str] = {}
    jobs = []
    for rel in rels:
        job = FileJob(rel, osp.join(root, rel))
        for kind, folder in folders.items():
            path = output_name(rel, folder)
            real = osp.realpath(path)
            if real in inputs:
                raise ValueError(
                    f'The {kind} of {rel!r} would replace the input image '
                    f'{path!r}: write the outputs to a folder that is not '
                    'the input folder.')
            if real in claimed:
                job.error = (f'{claimed[real]!r} is also written to {path!r};'
                             ' rename one of the two inputs')
                break
            claimed[real] = rel
            if not force and osp.exists(path):
                job.kept.append(path)
            else:
                job.outputs[kind] = path
        jobs.append(job)
    return jobs


def num_classes_of(model: nn.Module) -> int:
    """Classes a segmentor predicts (its decode head's, else its
    ``dataset_meta``'s)."""
    head = getattr(model, 'decode_head', None)
    if head is not None and getattr(head, 'num_classes', None):
        return int(head.num_classes)
    return len(model.dataset_meta['classes'])


def label_dtype(num_classes: int) -> np.dtype:
    """uint8 for up to 256 classes, else uint16: the PNG depths that hold a
    class index per pixel, smallest first."""
    if num_classes <= 256:
        return np.dtype(np.uint8)
    if num_classes <= 65536:
        return np.dtype(np.uint16)
    raise ValueError(f'{num_classes} classes do not fit a 16-bit PNG.')


def label_map(sample, num_classes: int) -> np.ndarray:
    """The predicted class of each pixel, ``(H, W)`` at the image's size,
    as :func:`label_dtype` of ``num_classes``.

    Args:
        sample (SegDataSample): A result of :func:`inference_model`.
        num_classes (int): Classes of the model.
    """
    labels = sample.pred_sem_seg.data[0].cpu().numpy()
    return labels.astype(label_dtype(num_classes))


def palette_array(palette: Optional[Sequence[Sequence[int]]],
                  num_classes: int, seed: int = 42) -> np.ndarray:
    """``(num_classes, 3)`` uint8 RGB colours: ``palette``, completed with
    seeded random colours where it has fewer (as MMSegmentation's
    ``get_palette`` makes them for a config without one)."""
    known = np.asarray(palette or [], dtype=np.uint8).reshape(-1, 3)
    missing = max(num_classes - len(known), 0)
    extra = np.random.RandomState(seed).randint(
        0, 256, (missing, 3)).astype(np.uint8)
    return np.concatenate([known, extra])[:max(num_classes, len(known))]


def colour_overlay(image: np.ndarray, labels: np.ndarray,
                   palette: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """The image with each pixel's class colour painted over it.

    The same blend as MMSegmentation's ``SegLocalVisualizer`` (without its
    class-name captions), in a few array operations: no figure is drawn,
    so writing overlays costs little more than writing label maps.

    Args:
        image (np.ndarray): ``(H, W, 3)`` BGR uint8.
        labels (np.ndarray): ``(H, W)`` class indices.
        palette (np.ndarray): ``(C, 3)`` RGB, see :func:`palette_array`.
        opacity (float): Weight of the colours, in (0, 1].

    Returns:
        np.ndarray: ``(H, W, 3)`` BGR uint8.
    """
    colours = palette[:, ::-1][labels]  # RGB palette, BGR image
    blend = image * (1 - opacity) + colours * opacity
    return blend.astype(np.uint8)


def write_png(path: str, array: np.ndarray, overwrite: bool = False) -> None:
    """Write ``array`` as a PNG (8 or 16 bits, 1 or 3 channels) atomically:
    a killed run never leaves a half-written file under the final name."""
    ok, data = cv2.imencode('.png', array)
    if not ok:
        raise ValueError(f'OpenCV could not encode {path!r} as PNG.')
    atomic_write(path, lambda f: f.write(data.tobytes()), overwrite=overwrite)


@dataclass
class Segmented:
    """One image through :func:`iter_segmented`.

    Attributes:
        path (str): The image file.
        image (np.ndarray, optional): Its pixels (BGR uint8), if read.
        result (SegDataSample, optional): The segmentation, if made.
        error (str, optional): Why it could not be read or segmented.
    """
    path: str
    image: Optional[np.ndarray] = None
    result: Optional[object] = None
    error: Optional[str] = None


def _read(path: str) -> Segmented:
    try:
        return Segmented(path, image=read_image(path))
    except (OSError, ValueError) as err:
        return Segmented(path, error=str(err))


def _read_ahead(paths: Iterable[str], depth: int) -> Iterator[Segmented]:
    """:func:`read_image` of each path in order, ``depth`` files ahead in a
    thread: OpenCV decodes without holding the GIL, so the next batch is
    read while the model runs the current one."""
    paths = iter(paths)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        queue: Deque[concurrent.futures.Future] = collections.deque(
            # range first: zip stops on it without taking a path too many.
            pool.submit(_read, path) for _, path in zip(range(depth), paths))
        while queue:
            done = queue.popleft().result()
            for path in paths:  # refill by one, if any are left
                queue.append(pool.submit(_read, path))
                break
            yield done


def _infer(model: nn.Module, batch: List[Segmented]) -> None:
    """Segment ``batch`` (images of one size) in one call; if that fails,
    image by image, so only the image that fails is lost."""
    try:
        results = inference_model(model, [item.image for item in batch])
    except Exception as err:  # noqa: BLE001  one image must not stop a run
        if len(batch) > 1:
            for item in batch:
                _infer(model, [item])
            return
        batch[0].error = f'inference failed: {type(err).__name__}: {err}'
        return
    for item, result in zip(batch, results, strict=True):
        item.result = result


def iter_segmented(model: nn.Module,
                   paths: Iterable[str],
                   batch_size: int = 1) -> Iterator[Segmented]:
    """Read and segment images, yielding each one in the order of ``paths``.

    Consecutive images of the same size are segmented together, up to
    ``batch_size`` a call (MMSegmentation stacks a batch without padding
    at test time, so a batch holds one size). A file that cannot be read or
    segmented is yielded with its ``error`` set; the others go on.

    Args:
        model (nn.Module): From :func:`init_model`.
        paths (Iterable[str]): Image files.
        batch_size (int): Most images per model call. Default: 1.

    Yields:
        Segmented: Each path's image and result, or its error.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1; got {batch_size}.')
    pending: List[Segmented] = []  # in input order, failed reads included

    def flush() -> Iterator[Segmented]:
        batch = [item for item in pending if item.error is None]
        if batch:
            _infer(model, batch)
        yield from pending
        pending.clear()

    for item in _read_ahead(paths, depth=2 * batch_size):
        if item.error is None:
            batch = [p for p in pending if p.error is None]
            if batch and batch[0].image.shape != item.image.shape:
                yield from flush()
        pending.append(item)
        if sum(p.error is None for p in pending) == batch_size:
            yield from flush()
    yield from flush()


def segment_files(model: nn.Module,
                  jobs: Sequence[FileJob],
                  batch_size: int = 1,
                  opacity: float = 0.5,
                  force: bool = False) -> Iterator[FileJob]:
    """Segment each job's image and write its outputs.

    Label maps hold the class index of each pixel (:func:`label_map`);
    overlays are :func:`colour_overlay`. Every file is written atomically,
    and an existing one is replaced only with ``force``. Jobs with nothing
    to write, or already failed, are yielded as they are, unread.

    Args:
        model (nn.Module): From :func:`init_model`.
        jobs (Sequence[FileJob]): From :func:`plan_outputs`.
        batch_size (int): Most images per model call. Default: 1.
        opacity (float): Of the overlays' colours. Default: 0.5.
        force (bool): Replace outputs that exist by now. Default: False.

    Yields:
        FileJob: Each job once done, in order, ``error`` set if it failed.
    """
    num_classes = num_classes_of(model)
    palette = palette_array(model.dataset_meta.get('palette'), num_classes)
    todo = {job.src: job for job in jobs if job.outputs and not job.error}
    segmented = iter_segmented(model, list(todo), batch_size)
    for job in jobs:
        if job.src not in todo:
            yield job
            continue
        item = next(segmented)
        job.error = item.error
        if item.error is None:
            _write_outputs(job, item, num_classes, palette, opacity, force)
        yield job


def _write_outputs(job: FileJob, item: Segmented, num_classes: int,
                   palette: np.ndarray, opacity: float, force: bool) -> None:
    labels = label_map(item.result, num_classes)
    draw: Dict[str, Callable[[], np.ndarray]] = {
        LABEL: lambda: labels,
        OVERLAY: lambda: colour_overlay(item.image, labels, palette, opacity),
    }
    for kind, path in job.outputs.items():
        try:
            write_png(path, draw[kind](), overwrite=force)
        except (OSError, ValueError) as err:
            job.error = f'cannot write {path!r}: {err}'
            return
