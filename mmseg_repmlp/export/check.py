"""Checking an exported graph against PyTorch, and reporting the result."""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..utils.compare import (
    label_agreement,
    logits_to_labels,
    max_relative_difference,
)
from ..utils.images import read_image
from .runtime import ort_session, run_onnx, to_input_array


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


@torch.no_grad()
def torch_reference(model: nn.Module,
                    batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Logits and labels of MMSegmentation's own path on an ``(N, 3, H, W)``
    pixel batch: the model's data preprocessor, ``encode_decode`` (decode
    head resized to the image) and ``argmax`` (or the single-class
    threshold; see :func:`~mmseg_repmlp.utils.logits_to_labels`)."""
    inputs = [torch.from_numpy(img) for img in batch]
    data = model.data_preprocessor(dict(inputs=inputs), False)
    x = data['inputs']
    h, w = batch.shape[-2:]
    metas = [dict(img_shape=(h, w), ori_shape=(h, w))] * len(batch)
    logits = model.encode_decode(x, metas)
    labels = logits_to_labels(logits,
                              getattr(model.decode_head, 'threshold', None))
    return logits.numpy(), labels.numpy()


def check_onnx(model: nn.Module,
               path: str,
               images: Sequence[np.ndarray],
               tolerance: float = 1e-4,
               session=None) -> Dict[str, object]:
    """Compare onnxruntime with PyTorch on a batch of images.

    Args:
        model (nn.Module): The deployed segmentor the graph was made from.
        path (str): The ``.onnx`` file.
        images (Sequence[np.ndarray]): ``(H, W, 3)`` BGR images of one size.
        tolerance (float): Largest relative logit difference accepted.
        session: An existing :func:`ort_session` for ``path``.

    Returns:
        dict: ``shape``, ``batch``, ``output``, ``rel_diff`` (max |ort -
        torch| / max |torch| of the logits; None for a labels graph),
        ``equal_fraction`` (of label pixels off near ties), ``near_ties``,
        ``identical`` and ``ok``.
    """
    session = session or ort_session(path)
    batch = np.stack([to_input_array(img)[0] for img in images])
    ref_logits, ref_labels = torch_reference(model, batch)
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
