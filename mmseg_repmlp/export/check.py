"""Checking an exported graph against PyTorch and against the toolkit's
labels, and reporting the results."""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.compare import (
    label_agreement,
    logits_to_labels,
    max_relative_difference,
    near_ties,
)
from ..utils.images import read_image
from .runtime import ort_session, run_onnx, to_input_array
from .wrapper import PipelineResize

#: ``image -> (labels, logits)`` of the toolkit for one ``(H, W, 3)`` BGR
#: uint8 image: ``(H, W)`` labels and ``(C, H, W)`` logits (None where the
#: toolkit gives none), as ``mmseg_repmlp.apis.inference_model`` returns
#: them. The export layer cannot import ``apis``; the CLI passes it.
ToolkitLabels = Callable[[np.ndarray], Tuple[np.ndarray, Optional[np.ndarray]]]

#: Sizes (H, W) the toolkit's labels are compared at by default: a tiny
#: image, a landscape and a portrait one no stride divides, a Cityscapes
#: frame; :func:`agreement_shapes` adds the test scale's own size.
DEFAULT_AGREEMENT_SHAPES = ((32, 32), (333, 517), (517, 333), (1024, 2048))


def second_check_shape(shape: Tuple[int, int]) -> Tuple[int, int]:
    """A size unlike ``shape`` (about 3/4 of it, odd, so no stride or
    window divides it) to check that a dynamic graph generalises."""
    h, w = shape
    h2, w2 = max(h * 3 // 4, 20) | 1, max(w * 3 // 4, 20) | 1
    if (h2, w2) == (h, w):
        h2 += 2
    return h2, w2


def check_image(path: Optional[str], shape: Tuple[int, int],
                seed: int = 0) -> np.ndarray:
    """``(H, W, 3)`` BGR uint8 image of ``shape`` to check a graph on.

    The image file ``path`` (read with :func:`mmseg_repmlp.apis.read_image`)
    resized bilinearly, or random pixels when ``path`` is None.
    """
    if path is None:
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    img = read_image(path)
    if img.shape[:2] != tuple(shape):
        import mmcv
        img = mmcv.imresize(img, (shape[1], shape[0]))
    return img


def resize_image(img: np.ndarray, resize: PipelineResize) -> np.ndarray:
    """``img`` resized as MMCV's ``Resize`` transform resizes it."""
    import mmcv
    if resize.keep_ratio:
        return mmcv.imrescale(img, resize.scale, interpolation='bilinear',
                              backend='cv2')
    return mmcv.imresize(img, resize.scale, interpolation='bilinear',
                         backend='cv2')


@torch.no_grad()
def torch_reference(model: nn.Module,
                    batch: np.ndarray,
                    resize: Optional[PipelineResize] = None
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Logits and labels of MMSegmentation's own path on an ``(N, 3, H, W)``
    pixel batch: MMCV's resize (with ``resize``), the model's data
    preprocessor, ``encode_decode`` (decode head resized to the model's
    input), the logits resized back to the batch's size (with ``resize``,
    as ``postprocess_result``) and ``argmax`` (or the single-class
    threshold; see :func:`~mmseg_repmlp.utils.logits_to_labels`)."""
    h, w = batch.shape[-2:]
    inputs = [torch.from_numpy(img) for img in batch]
    if resize is not None:
        # MMCV resizes the toolkit's uint8 images; the graph rounds too.
        pixels = np.clip(np.floor(batch + 0.5), 0, 255).astype(np.uint8)
        inputs = [torch.from_numpy(np.ascontiguousarray(resize_image(
            img.transpose(1, 2, 0), resize).transpose(2, 0, 1)))
            for img in pixels]
    data = model.data_preprocessor(dict(inputs=inputs), False)
    shape = tuple(inputs[0].shape[-2:])
    metas = [dict(img_shape=shape, ori_shape=(h, w))] * len(batch)
    logits = model.encode_decode(data['inputs'], metas)
    if shape != (h, w):
        logits = F.interpolate(logits, size=(h, w), mode='bilinear',
                               align_corners=model.decode_head.align_corners)
    labels = logits_to_labels(logits,
                              getattr(model.decode_head, 'threshold', None))
    return logits.numpy(), labels.numpy()


def check_onnx(model: nn.Module,
               path: str,
               images: Sequence[np.ndarray],
               tolerance: float = 1e-4,
               session=None,
               resize: Optional[PipelineResize] = None) -> Dict[str, object]:
    """Compare onnxruntime with PyTorch on a batch of images.

    Args:
        model (nn.Module): The deployed segmentor the graph was made from.
        path (str): The ``.onnx`` file.
        images (Sequence[np.ndarray]): ``(H, W, 3)`` BGR uint8 images of one
            size.
        tolerance (float): Largest relative logit difference accepted.
        session: An existing :func:`ort_session` for ``path``.
        resize (PipelineResize, optional): The test-time resize the graph
            has inside (see :func:`torch_reference`).

    Returns:
        dict: ``shape``, ``batch``, ``output``, ``rel_diff`` (max |ort -
        torch| / max |torch| of the logits; None for a labels graph),
        ``equal_fraction`` (of label pixels off near ties), ``near_ties``,
        ``identical`` and ``ok``.
    """
    session = session or ort_session(path)
    batch = np.stack([to_input_array(img)[0] for img in images])
    ref_logits, ref_labels = torch_reference(model, batch, resize)
    out = run_onnx(session, batch)
    output = session.get_outputs()[0].name
    rel = None
    if output == 'logits':
        if out.shape != ref_logits.shape:
            raise RuntimeError(f'onnxruntime returned logits of shape '
                               f'{out.shape}, PyTorch {ref_logits.shape}.')
        rel = max_relative_difference(out, ref_logits)
        labels = logits_to_labels(
            out, getattr(model.decode_head, 'threshold', None))
    else:
        labels = out
    if labels.shape != ref_labels.shape:
        raise RuntimeError(f'onnxruntime returned labels of shape '
                           f'{labels.shape}, PyTorch {ref_labels.shape}.')
    agreement = label_agreement(labels, ref_labels, ref_logits, tolerance)
    return dict(
        shape=tuple(batch.shape[-2:]),
        batch=len(batch),
        output=output,
        rel_diff=rel,
        equal_fraction=agreement.equal_fraction,
        near_ties=agreement.near_ties,
        identical=agreement.identical,
        ok=agreement.identical and (rel is None or rel <= tolerance))


def format_check(result: Dict[str, object], source: str,
                 tolerance: float) -> str:
    """One line for a :func:`check_onnx` result on the image ``source``."""
    h, w = result['shape']
    rel = result['rel_diff']
    rel_text = ('n/a (labels graph)' if rel is None else
                f'{rel:.2e} (tolerance {tolerance:g})')
    return (f'{source} at {h}x{w}, batch {result["batch"]}: max relative '
            f'logit difference {rel_text}; label maps '
            f'{"identical" if result["identical"] else "DIFFER"} (fraction '
            f'of equal pixels {result["equal_fraction"]:.6f}'
            + (f'; {result["near_ties"]} near-tie pixels not compared'
               if result.get('near_ties') else '') + ')')


def agreement_shapes(resize: Optional[PipelineResize],
                     extra: Sequence[Tuple[int, int]] = DEFAULT_AGREEMENT_SHAPES
                     ) -> List[Tuple[int, int]]:
    """The sizes the toolkit's labels are compared at: ``extra`` and, for
    a resize, the size it leaves as it is (``(min(scale), max(scale))``
    with ``keep_ratio``, else the scale's ``(H, W)``)."""
    shapes = [tuple(s) for s in extra]
    if resize is not None:
        w, h = resize.scale
        own = (min(w, h), max(w, h)) if resize.keep_ratio else (h, w)
        shapes.append(own)
    return list(dict.fromkeys(shapes))  # without repeats, in order


def toolkit_agreement(session, image: np.ndarray, toolkit: ToolkitLabels,
                      threshold: Optional[float] = None,
                      tolerance: float = 1e-4) -> Dict[str, object]:
    """Compare the graph's labels with the toolkit's on one image.

    Args:
        session: An :func:`ort_session` of the graph.
        image (np.ndarray): ``(H, W, 3)`` BGR uint8 image.
        toolkit (ToolkitLabels): The toolkit's labels and logits.
        threshold (float, optional): The decode head's single-class
            threshold, for a logits graph.
        tolerance (float): Margin of the near-tie count (see
            :func:`~mmseg_repmlp.utils.near_ties`).

    Returns:
        dict: ``shape``, ``equal_fraction`` (of all pixels: nothing is left
        out), ``differing`` (pixels) and ``near_ties`` (of those, how many
        are near ties of the toolkit's logits, where float rounding
        decides).
    """
    out = run_onnx(session, image)
    if session.get_outputs()[0].name == 'logits':
        out = logits_to_labels(out, threshold)
    labels = out[0].astype(np.int64)
    ref_labels, ref_logits = toolkit(image)
    ref_labels = np.asarray(ref_labels).astype(np.int64)
    if labels.shape != ref_labels.shape:
        raise RuntimeError(f'The graph gave labels of shape {labels.shape}, '
                           f'the toolkit {ref_labels.shape}.')
    differ = labels != ref_labels
    ties = 0
    if ref_logits is not None and ref_logits.shape[0] > 1:
        ties = int((differ & near_ties(ref_logits[None], tolerance)[0]).sum())
    return dict(shape=tuple(labels.shape), equal_fraction=1 - differ.mean(),
                differing=int(differ.sum()), near_ties=ties)


def format_agreement(result: Dict[str, object], source: str) -> str:
    """One line for a :func:`toolkit_agreement` result."""
    h, w = result['shape']
    line = (f'Label agreement with inference_model on {source} at {h}x{w}: '
            f'{100 * result["equal_fraction"]:.4f} % of pixels')
    if result['differing']:
        line += (f' ({result["differing"]} differ, {result["near_ties"]} of '
                 'them near ties)')
    return line
