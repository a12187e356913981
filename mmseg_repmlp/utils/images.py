"""Reading user images for inference: any common kind, clear errors."""
import os.path as osp

import cv2
import numpy as np


def read_image(path: str) -> np.ndarray:
    """Read an image as an 8-bit 3-channel BGR array (what the models take).

    Grayscale images are expanded to three channels, the alpha channel of
    RGBA/BGRA images is dropped, and 16-bit images are scaled to 8 bits.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not an image OpenCV can decode, or is cut
            short.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Image {path!r} does not exist.')
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None or img.size == 0:
        raise ValueError(
            f'{path!r} is not an image OpenCV can read (empty, truncated or '
            'another format); re-export it as PNG or JPEG.')
    if _is_truncated(path, data):
        raise ValueError(f'{path!r} is truncated (the file ends before the '
                         'image data does); re-export or re-download it.')
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f'{path!r} has {img.dtype} pixels; only 8- and '
                         '16-bit images are supported.')
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    elif img.shape[2] == 1:
        img = cv2.cvtColor(img[..., 0], cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(img)


def _is_truncated(path: str, data: np.ndarray) -> bool:
    # OpenCV decodes a cut-short PNG or JPEG with a warning and grey/black
    # rows; the formats' end markers tell.
    head = bytes(data[:8])
    tail = bytes(data[-12:])
    if head.startswith(b'\x89PNG'):
        return b'IEND' not in tail
    if head.startswith(b'\xff\xd8'):
        return not tail.rstrip(b'\x00').endswith(b'\xff\xd9')
    return False
