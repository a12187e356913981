"""Segment images with an ONNX file of ``tools/export_onnx.py``: onnxruntime,
NumPy and OpenCV only (no torch, no MMSegmentation, no mmseg_repmlp).

    python examples/onnxruntime/segment.py MODEL.onnx IMAGE_OR_FOLDER [...] \
        --out-dir OUT [--threads N]

For every image (a folder is searched recursively) it writes
``OUT/<name>_labels.png``, the class ids (uint8, or uint16 above 256
classes), and ``OUT/<name>_color.png``, the classes painted with the
palette. Everything it needs is read from the file's metadata
(``custom_metadata_map``): the input convention (BGR pixels 0..255), the
class names, the RGB palette, and whether the test-time resize is in the
graph; where it is not (``--native-resolution`` exports), the image is
resized here as MMCV does (``test_scale``, ``keep_ratio``, OpenCV bilinear)
and the logits are resized back (a labels graph's labels: nearest, which is
close to the toolkit's labels but not equal). An image that cannot be read (missing,
not an image, truncated) is reported and skipped; the exit status is then
1.
"""
import argparse
import json
import os
import sys
from typing import Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np
import onnxruntime as ort

IMAGE_SUFFIXES = ('.bmp', '.jpeg', '.jpg', '.png', '.tif', '.tiff', '.webp')


def read_bgr(path: str) -> np.ndarray:
    """An 8-bit BGR ``(H, W, 3)`` image, as the toolkit's ``read_image``
    reads it (grey and 16-bit images converted, alpha dropped).

    Raises:
        ValueError: Not an image OpenCV decodes, or a PNG/JPEG cut short
            (OpenCV would decode it silently, with grey or black rows).
    """
    # Not cv2.imread: it decodes a cut-short JPEG with a warning on stderr
    # only; cv2.imdecode returns None for it.
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None or img.size == 0:
        raise ValueError('not an image OpenCV can read (empty, truncated or '
                         'another format)')
    tail = bytes(data[-12:]).rstrip(b'\x00')
    if (bytes(data[:4]) == b'\x89PNG' and b'IEND' not in tail) or (
            bytes(data[:2]) == b'\xff\xd8' and not tail.endswith(b'\xff\xd9')):
        raise ValueError('truncated: the file ends before the image data')
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f'{img.dtype} pixels; only 8 and 16 bits are read')
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def mmcv_size(height: int, width: int, scale: List[int],
              keep_ratio: bool) -> Tuple[int, int]:
    """``(H, W)`` MMCV's ``Resize(scale=(W, H), keep_ratio)`` gives."""
    if not keep_ratio:
        return scale[1], scale[0]
    factor = min(max(scale) / max(height, width),
                 min(scale) / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


class Segmenter:
    """An exported segmentor and what its metadata says about it.

    Args:
        path (str): The ``.onnx`` file.
        threads (int, optional): onnxruntime intra-op threads.
    """

    def __init__(self, path: str, threads: Optional[int] = None) -> None:
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            path, sess_options=options, providers=['CPUExecutionProvider'])
        meta: Dict[str, str] = self.session.get_modelmeta(
        ).custom_metadata_map
        if 'resize_in_graph' not in meta:
            raise ValueError(f'{path} has no mmseg_repmlp metadata; export '
                             'it with tools/export_onnx.py')
        if (meta['input_channel_order'], meta['input_range']) != ('BGR',
                                                                  '0..255'):
            raise ValueError('unsupported input convention '
                             f"{meta['input_channel_order']} "
                             f"{meta['input_range']}")
        self.meta = meta
        self.input_name = meta['input_name']
        self.output = meta['output']
        self.num_classes = int(meta['num_classes'])
        self.classes = json.loads(meta['classes']) or [
            str(i) for i in range(self.num_classes)]
        palette = json.loads(meta['palette'])
        if palette is None:  # a fixed pseudo-random palette
            palette = np.random.default_rng(0).integers(
                0, 256, (self.num_classes, 3))
        # RGB in the metadata; OpenCV writes BGR.
        self.palette_bgr = np.asarray(palette, np.uint8)[:, ::-1]
        self.scale = json.loads(meta['test_scale'])
        self.keep_ratio = json.loads(meta['keep_ratio'])
        self.resize_here = (not json.loads(meta['resize_in_graph'])
                            and self.scale is not None)
        rule = meta['label_rule']
        self.threshold = (None if rule == 'argmax' else
                          float(rule.split('>')[1]))
        self.label_dtype = np.uint8 if self.num_classes <= 256 else np.uint16

    def _labels(self, logits: np.ndarray) -> np.ndarray:
        if self.threshold is None:
            return logits.argmax(axis=0)
        return (1 / (1 + np.exp(-logits[0])) > self.threshold)

    def labels(self, image: np.ndarray) -> np.ndarray:
        """``(H, W)`` class ids of a BGR uint8 ``(H, W, 3)`` image."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'expected an (H, W, 3) image, got shape '
                             f'{image.shape}')
        height, width = image.shape[:2]
        if min(height, width) < 1:
            raise ValueError(f'empty image ({height}x{width}); the graph '
                             'needs H, W >= 1')
        x = image
        if self.resize_here:
            size = mmcv_size(height, width, self.scale, self.keep_ratio)
            x = cv2.resize(image, size[::-1], interpolation=cv2.INTER_LINEAR)
        batch = np.ascontiguousarray(x.transpose(2, 0, 1)[None],
                                     dtype=np.float32)
        out = self.session.run(None, {self.input_name: batch})[0][0]
        if self.output == 'labels':
            if out.shape != (height, width):
                out = cv2.resize(out.astype(np.int32), (width, height),
                                 interpolation=cv2.INTER_NEAREST)
            return out.astype(self.label_dtype)
        if out.shape[1:] != (height, width):
            # Bilinear, half-pixel: the toolkit's logit resize (align
            # corners off).
            out = cv2.resize(out.transpose(1, 2, 0), (width, height),
                             interpolation=cv2.INTER_LINEAR)
            out = out.reshape(height, width, -1).transpose(2, 0, 1)
        return self._labels(out).astype(self.label_dtype)

    def colour(self, labels: np.ndarray) -> np.ndarray:
        """The labels painted with the palette, BGR for ``cv2.imwrite``."""
        return self.palette_bgr[labels]


def find_images(inputs: List[str]) -> Iterator[Tuple[str, str]]:
    """``(path, name)`` of each image: a file as it is, a folder's images
    (recursively, sorted) named by their path inside it."""
    for item in inputs:
        if not os.path.isdir(item):
            yield item, os.path.splitext(os.path.basename(item))[0]
            continue
        for folder, dirs, files in os.walk(item):
            dirs.sort()
            for file in sorted(files):
                if file.lower().endswith(IMAGE_SUFFIXES):
                    path = os.path.join(folder, file)
                    yield path, os.path.splitext(os.path.relpath(path,
                                                                 item))[0]


def segment(segmenter: Segmenter, inputs: List[str], out_dir: str) -> int:
    """Segment every image of ``inputs`` into ``out_dir``; the number of
    images skipped."""
    skipped = done = 0
    for path, name in find_images(inputs):
        try:
            labels = segmenter.labels(read_bgr(path))
        except (OSError, ValueError) as err:
            print(f'skipped {path}: {err}', file=sys.stderr)
            skipped += 1
            continue
        stem = os.path.join(out_dir, name)
        os.makedirs(os.path.dirname(stem), exist_ok=True)
        cv2.imwrite(stem + '_labels.png', labels)
        cv2.imwrite(stem + '_color.png', segmenter.colour(labels))
        present = [segmenter.classes[i] for i in np.unique(labels)]
        print(f'{path}: {labels.shape[0]}x{labels.shape[1]} -> '
              f'{stem}_labels.png ({", ".join(present)})')
        done += 1
    print(f'{done} images segmented, {skipped} skipped')
    return skipped


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('model', help='.onnx file from tools/export_onnx.py')
    parser.add_argument('inputs', nargs='+', help='images or folders')
    parser.add_argument('--out-dir', required=True,
                        help='where the label and colour PNGs go')
    parser.add_argument('--threads', type=int,
                        help='onnxruntime intra-op threads')
    args = parser.parse_args(argv)
    segmenter = Segmenter(args.model, args.threads)
    skipped = segment(segmenter, args.inputs, args.out_dir)
    return 1 if skipped else 0


if __name__ == '__main__':
    sys.exit(main())
