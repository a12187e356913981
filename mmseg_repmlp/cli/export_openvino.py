"""``tools/export_openvino.py``: export the deployed segmentor to OpenVINO.

    python tools/export_openvino.py CONFIG CHECKPOINT OUT_DIR \
        [--precision fp32|bf16|int8] [--calib-images N] [--check-images N] \
        [--max-label-disagreement F] [--layer-report] \
        [--accuracy-control [--max-float-layers N]] [--native-resolution] \
        [--image IMG] [--threads N] [--force]

The segmentor is exported to ONNX as ``tools/export_onnx.py`` does (dynamic
size, the config's test-time resize inside unless --native-resolution;
checked against PyTorch and inference_model), converted with
``openvino.convert_model`` and written as OUT_DIR/model.xml and model.bin,
with the ONNX file's metadata and the precision in the IR's rt_info. fp32
is checked against onnxruntime; bf16 and INT8 against fp32 on training
images held out from calibration, read through the config's test pipeline:
OUT_DIR is written only if at most --max-label-disagreement of their pixels
get another label. INT8 is NNCF post-training quantization calibrated on
the first --calib-images training images. Compile the IR with
``mmseg_repmlp.export.compile_ir`` (it sets the precision the IR was made
for); evaluate it with tools/test_exported.py.
"""
import argparse
import os
import sys
from typing import List, Optional

from mmengine.config import DictAction

from ..apis import check_size, init_model, read_image
from ..export.calibration import split_training_images
from ..export.ir import PRECISIONS
from ..export.openvino import DEFAULT_MAX_LABEL_DISAGREEMENT, export_openvino
from ..utils.fileio import refuse_to_overwrite
from .export_onnx import toolkit_labels

#: Calibration images (NNCF's statistics are per tensor or per channel:
#: a few dozen images of the test scale; not tuned by measurement yet).
DEFAULT_CALIB_IMAGES = 32
DEFAULT_CHECK_IMAGES = 8


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export the deployed segmentor to an OpenVINO IR (fp32, '
        'bf16 or INT8), checked before it is written.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[-1])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='training or deploy checkpoint')
    parser.add_argument('out', help='folder to write (model.xml, model.bin)')
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32',
                        help='precision of the IR (default: fp32)')
    parser.add_argument(
        '--calib-images', type=int, default=DEFAULT_CALIB_IMAGES,
        help='INT8: training images to calibrate on (default: '
        f'{DEFAULT_CALIB_IMAGES})')
    parser.add_argument(
        '--check-images', type=int, default=DEFAULT_CHECK_IMAGES,
        help='bf16/INT8: training images after the calibration ones that '
        f'the IR is checked on (default: {DEFAULT_CHECK_IMAGES})')
    parser.add_argument(
        '--max-label-disagreement', type=float,
        default=DEFAULT_MAX_LABEL_DISAGREEMENT,
        help='bf16/INT8: largest fraction of held-out pixels that may get '
        'another label than from the fp32 IR (default: '
        f'{DEFAULT_MAX_LABEL_DISAGREEMENT})')
    parser.add_argument(
        '--layer-report', action='store_true',
        help='INT8: print the error of each unit and stage against fp32 on '
        'the held-out images')
    parser.add_argument(
        '--accuracy-control', action='store_true',
        help='INT8: return the quantized layers that change the labels most '
        'to float, one by one, until the calibration images disagree with '
        'fp32 on at most half of --max-label-disagreement (NNCF accuracy '
        'control; slower)')
    parser.add_argument(
        '--max-float-layers', type=int,
        help='--accuracy-control: return at most this many layers to float '
        '(default: as many as it takes)')
    parser.add_argument(
        '--native-resolution', action='store_true',
        help="leave the config's test-time resize out of the graph")
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help="size the ONNX graph is checked at (default: the data "
        "preprocessor's size, else 512 512)")
    parser.add_argument('--image', help='image the graphs are checked on '
                        '(default: random pixels)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest relative logit difference of the fp32 '
                        'checks (default: 1e-4)')
    parser.add_argument('--threads', type=int,
                        help='inference threads of the checks (default: '
                        "OpenVINO's)")
    parser.add_argument('--force', action='store_true',
                        help='replace OUT if it exists')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value pairs (such as '
        'train_dataloader.dataset.data_root=DIR for the calibration images)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    try:
        refuse_to_overwrite(args.out, args.force)
        if args.image is not None:
            read_image(args.image)
    except (OSError, ValueError) as err:
        sys.exit(f'error: {err}')
    parent = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(parent):
        sys.exit(f'error: directory {parent!r} does not exist; create it '
                 'first.')
    if args.out.endswith(('.xml', '.bin', '.onnx')):
        sys.exit(f'error: OUT is a folder (it gets model.xml and model.bin); '
                 f'got {args.out!r}.')
    if not 0 <= args.max_label_disagreement <= 1:
        sys.exit('error: --max-label-disagreement is a fraction in [0, 1]; '
                 f'got {args.max_label_disagreement}.')
    if args.calib_images < 1 or args.check_images < 1:
        sys.exit('error: --calib-images and --check-images must be >= 1.')
    for flag in ('layer_report', 'accuracy_control'):
        if getattr(args, flag) and args.precision != 'int8':
            sys.exit(f'error: --{flag.replace("_", "-")} is for INT8; pass '
                     '--precision int8.')
    if args.max_float_layers is not None and (
            not args.accuracy_control or args.max_float_layers < 0):
        sys.exit('error: --max-float-layers (>= 0) goes with '
                 '--accuracy-control.')
    try:
        model = init_model(args.config, args.checkpoint, device='cpu',
                           cfg_options=args.cfg_options)
        calibration, held_out = [], []
        if args.precision != 'fp32':
            calibration, held_out = split_training_images(
                model.cfg, args.calib_images if args.precision == 'int8'
                else 0, args.check_images)
        export_openvino(
            model, args.out, args.shape or check_size(model),
            precision=args.precision,
            calibration=calibration,
            held_out=held_out,
            max_label_disagreement=args.max_label_disagreement,
            image=args.image,
            tolerance=args.tolerance,
            force=args.force,
            native_resolution=args.native_resolution,
            toolkit=toolkit_labels(model),
            threads=args.threads,
            report_layers=args.layer_report,
            accuracy_control=args.accuracy_control,
            max_float_layers=args.max_float_layers)
    except (OSError, ValueError, RuntimeError, ImportError) as err:
        sys.exit(f'error: {err}')
