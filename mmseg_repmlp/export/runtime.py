"""Running an exported segmentor in onnxruntime."""
from typing import Optional, Sequence, Tuple

import numpy as np


def require_onnx():
    """``(onnx, onnxruntime)``, or an ImportError that says how to install
    them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise ImportError(
            f'ONNX export needs onnx and onnxruntime ({err}); install them '
            'with `pip install -r requirements/tests.txt` or '
            '`pip install onnx onnxruntime`.') from None
    return onnx, onnxruntime


def ort_session(path: str, num_threads: Optional[int] = None,
                providers: Optional[Sequence[str]] = None):
    """An onnxruntime ``InferenceSession`` for ``path`` (CPU by default).

    Args:
        path (str): The ``.onnx`` file.
        num_threads (int, optional): Intra-op threads; default: onnxruntime's.
        providers (Sequence[str], optional): Execution providers.
            Default: ``['CPUExecutionProvider']``.
    """
    _, ort = require_onnx()
    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = int(num_threads)
    return ort.InferenceSession(
        str(path), sess_options=options,
        providers=list(providers or ['CPUExecutionProvider']))


def check_input_shape(shape: Tuple[int, ...]) -> None:
    """Raise a clear ValueError unless ``shape`` is a graph input's:
    ``(N, 3, H, W)`` with ``N, H, W >= 1``. A graph cannot raise; given an
    empty batch or image it fails deep inside, naming an operator."""
    if len(shape) != 4 or shape[1] != 3:
        raise ValueError('Expected an (N, 3, H, W) batch; got shape '
                         f'{shape}.')
    if min(shape[0], shape[2], shape[3]) < 1:
        raise ValueError('The graph needs N >= 1 images of H, W >= 1 '
                         f'pixels; got shape {shape} (an empty batch or '
                         'image).')


def to_input_array(image_array: np.ndarray) -> np.ndarray:
    """The graph's input for an image or a batch.

    A 3-D array is one ``(H, W, 3)`` image as ``mmcv.imread`` / ``cv2.imread``
    return it (BGR); a 4-D array is already an ``(N, 3, H, W)`` batch. Values
    are pixels (0..255), any dtype; the result is contiguous float32.

    Raises:
        ValueError: Another shape, an empty batch or an empty image.
    """
    array = np.asarray(image_array)
    if array.ndim == 3:
        if array.shape[-1] != 3:
            raise ValueError('A 3-D image must be (H, W, 3); got '
                             f'{array.shape}.')
        array = array.transpose(2, 0, 1)[None]
    elif array.ndim != 4 or array.shape[1] != 3:
        raise ValueError('Expected an (H, W, 3) image or an (N, 3, H, W) '
                         f'batch; got shape {array.shape}.')
    check_input_shape(array.shape)
    return np.ascontiguousarray(array, dtype=np.float32)


def run_onnx(session, image_array: np.ndarray) -> np.ndarray:
    """Run an exported segmentor on pixels (see :func:`to_input_array`).

    Returns the graph's single output: ``(N, C, H, W)`` logits or
    ``(N, H, W)`` labels. No timing, no warm-up: the caller decides.
    """
    name = session.get_inputs()[0].name
    return session.run(None, {name: to_input_array(image_array)})[0]
