"""``tools/export_onnx.py``: export the deployed segmentor to ONNX.

    python tools/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--shape H W] \
        [--dynamic] [--native-resolution] [--output logits|labels] \
        [--opset N] [--image IMG] [--force]

CHECKPOINT may be a training or a deploy checkpoint: the exported model is
always the deploy (re-parameterized) one. The graph takes raw pixels, a
float32 ``(N, 3, H, W)`` tensor of 0..255 values in BGR order (as
``cv2.imread`` reads images; N, H, W >= 1) and, like
``mmseg_repmlp.apis.inference_model``, resizes them to the config's test
scale, runs the model (normalization and BGR-to-RGB are in the graph) and
resizes the logits back: it returns ``logits`` ``(N, classes, H, W)`` or
``labels`` ``(N, H, W)`` at the input size, the toolkit's labels for any
size. ``--native-resolution`` leaves the resize out (the model runs at the
input size). Without ``--shape`` the graph takes any size (as with
``--dynamic``). The graph is checked with ``onnx.checker``, run in
onnxruntime next to PyTorch on IMAGE (random pixels when none is given), and
its labels are compared with ``inference_model``'s at several sizes; OUT is
written only if they agree. The file's metadata (classes, palette, input
convention, test scale) is printed after writing.
"""
import argparse
import os
import sys
from typing import List, Optional, Tuple

import numpy as np

from ..apis import check_size, inference_model, init_model, read_image
from ..export.check import DEFAULT_AGREEMENT_SHAPES, ToolkitLabels
from ..export.onnx import (
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_OPSET,
    MAX_OPSET,
    MIN_OPSET,
    export_segmentor,
    read_metadata,
)
from ..utils.fileio import refuse_to_overwrite


def _size(text: str) -> Tuple[int, int]:
    """``'333x517'`` -> ``(333, 517)`` (H x W)."""
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected HxW such as 333x517; got {text!r}') from None
    if min(h, w) < 1:
        raise argparse.ArgumentTypeError(f'sizes must be positive: {text!r}')
    return h, w


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export the deployed segmentor to ONNX, checked against '
        'PyTorch and the toolkit\'s labels in onnxruntime.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[-1])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='training or deploy checkpoint')
    parser.add_argument('out', help='ONNX file to write')
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help='a fixed graph for (1, 3, H, W) images of this size (a real '
        'image size: the test-time resize is in the graph). Without it the '
        'graph takes any batch and size, as with --dynamic. Also the size '
        "the graph is checked against PyTorch at (default: the data "
        "preprocessor's size, else 512 512)")
    parser.add_argument(
        '--dynamic', action='store_true',
        help='dynamic batch, height and width even with --shape (the '
        'default without it); also checked on a batch of 2 at a second size')
    parser.add_argument(
        '--native-resolution', action='store_true',
        help="leave the config's test-time resize out of the graph: the "
        'model runs at the input size (as before this option existed); the '
        'toolkit resizes first, so its labels differ unless you resize as '
        'the metadata says')
    parser.add_argument('--output', choices=('logits', 'labels'),
                        default='logits',
                        help='graph output (default: logits)')
    parser.add_argument('--label-dtype', choices=('int64', 'uint8'),
                        help='dtype of the labels output (default: uint8 up '
                        'to 256 classes, else int64)')
    parser.add_argument(
        '--opset', type=int, default=DEFAULT_OPSET,
        help=f'ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default: '
        f'{DEFAULT_OPSET})')
    parser.add_argument(
        '--image', help='image the ONNX model is compared on (resized to '
        'each size; default: random pixels); read before anything is '
        'exported')
    parser.add_argument(
        '--tolerance', type=float, default=1e-4,
        help='largest relative logit difference accepted (default: 1e-4)')
    parser.add_argument(
        '--agreement-sizes', type=_size, nargs='+', metavar='HxW',
        help="sizes the graph's labels are compared with inference_model's "
        'at (default for a dynamic graph: '
        + ' '.join(f'{h}x{w}' for h, w in DEFAULT_AGREEMENT_SHAPES) +
        " and the test scale's own size; for a fixed one: its size)")
    parser.add_argument(
        '--min-agreement', type=float, default=DEFAULT_MIN_AGREEMENT,
        help='fewest pixels per size that must get inference_model\'s label '
        f'(default: {DEFAULT_MIN_AGREEMENT}); not applied with '
        '--native-resolution')
    parser.add_argument('--force', action='store_true',
                        help='overwrite OUT if it exists')
    return parser.parse_args(argv)


def toolkit_labels(model) -> ToolkitLabels:
    """The toolkit's labels and logits of an image: what
    :func:`mmseg_repmlp.apis.inference_model` gives."""

    def labels(image: np.ndarray):
        sample = inference_model(model, image)
        return (sample.pred_sem_seg.data[0].cpu().numpy(),
                sample.seg_logits.data.cpu().numpy())

    return labels


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    # Cheap checks first: loading the model takes a while.
    try:
        refuse_to_overwrite(args.out, args.force)
        if args.image is not None:
            read_image(args.image)  # missing, not an image or truncated
    except (OSError, ValueError) as err:
        sys.exit(f'error: {err}')
    directory = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(directory):
        sys.exit(f'error: directory {directory!r} does not exist; create it '
                 'first.')
    if not MIN_OPSET <= args.opset <= MAX_OPSET:
        sys.exit(f'error: --opset must be in [{MIN_OPSET}, {MAX_OPSET}] '
                 f'(dynamic Pad/Resize need {MIN_OPSET}; the TorchScript '
                 f'exporter stops at {MAX_OPSET}); got {args.opset}.')
    if args.shape and min(args.shape) < 1:
        sys.exit(f'error: --shape must be positive; got {args.shape}.')
    try:
        model = init_model(args.config, args.checkpoint, device='cpu')
        export_segmentor(
            model,
            args.out,
            args.shape or check_size(model),
            dynamic=args.dynamic or not args.shape,
            output=args.output,
            opset=args.opset,
            image=args.image,
            tolerance=args.tolerance,
            force=args.force,
            label_dtype=args.label_dtype,
            native_resolution=args.native_resolution,
            toolkit=toolkit_labels(model),
            agreement_at=args.agreement_sizes,
            min_agreement=args.min_agreement)
    except (OSError, ValueError, RuntimeError, ImportError) as err:
        sys.exit(f'error: {err}')
    print('Metadata (onnx.load(path).metadata_props):')
    for key, value in read_metadata(args.out).items():
        print(f'  {key}: {value}')
