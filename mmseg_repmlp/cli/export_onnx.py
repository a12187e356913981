"""``tools/export_onnx.py``: export the deployed segmentor to ONNX.

    python tools/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--shape H W] \
        [--dynamic] [--output logits|labels] [--opset N] [--image IMG] \
        [--force]

CHECKPOINT may be a training or a deploy checkpoint: the exported model is
always the deploy (re-parameterized) one. The graph takes raw pixels, a
float32 ``(N, 3, H, W)`` tensor of 0..255 values in BGR order (as
``cv2.imread`` reads images; normalization and BGR-to-RGB are in the graph),
and returns ``logits`` ``(N, classes, H, W)`` or ``labels`` ``(N, H, W)``.
The graph is checked with ``onnx.checker`` and run in onnxruntime next to
PyTorch on IMAGE (random pixels when none is given); OUT is written only if
they agree.
"""
import argparse
import os
import sys
from typing import List, Optional

from ..apis import check_size, init_model
from ..export.onnx import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, export_segmentor
from ..utils.fileio import refuse_to_overwrite


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export the deployed segmentor to ONNX, checked against '
        'PyTorch in onnxruntime.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[-1])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='training or deploy checkpoint')
    parser.add_argument('out', help='ONNX file to write')
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help='input size of a fixed graph, and the size any graph is '
        "checked at (default: the data preprocessor's size, else 512 512)")
    parser.add_argument(
        '--dynamic', action='store_true',
        help='dynamic batch, height and width (also checked on a batch of 2 '
        'at a second size)')
    parser.add_argument('--output', choices=('logits', 'labels'),
                        default='logits',
                        help='graph output (default: logits)')
    parser.add_argument('--label-dtype', choices=('int64', 'uint8'),
                        default='int64',
                        help='dtype of the labels output (default: int64)')
    parser.add_argument(
        '--opset', type=int, default=DEFAULT_OPSET,
        help=f'ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default: '
        f'{DEFAULT_OPSET})')
    parser.add_argument(
        '--image', help='image the ONNX and PyTorch models are compared on '
        '(resized to the shape; default: random pixels)')
    parser.add_argument(
        '--tolerance', type=float, default=1e-4,
        help='largest relative logit difference accepted (default: 1e-4)')
    parser.add_argument('--force', action='store_true',
                        help='overwrite OUT if it exists')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    # Cheap checks first: loading the model takes a while.
    try:
        refuse_to_overwrite(args.out, args.force)
    except FileExistsError as err:
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
            dynamic=args.dynamic,
            output=args.output,
            opset=args.opset,
            image=args.image,
            tolerance=args.tolerance,
            force=args.force,
            label_dtype=args.label_dtype)
    except (OSError, ValueError, RuntimeError, ImportError) as err:
        sys.exit(f'error: {err}')
