"""``tools/image_demo.py``: segment one image and show or write an overlay.

    python tools/image_demo.py IMG CONFIG CHECKPOINT [--out-file result.png]

The arguments are MMSegmentation's ``demo/image_demo.py``'s (``--out-file``,
``--device``, ``--opacity``, ``--with-labels``, ``--title``); without
``--out-file`` the overlay is shown in a window. An existing ``--out-file``
is replaced only with ``--force``. For a folder of images, use
``tools/segment_folder.py``.
"""
import argparse
import os
import os.path as osp
import shlex
import sys
from typing import List, Optional

from ..apis import inference_model, init_model, read_image, show_result_pyplot
from ..utils.fileio import atomic_path, refuse_to_overwrite


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('img', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='training or deploy checkpoint')
    parser.add_argument('--out-file', default=None,
                        help='where to write the overlay (PNG); default: '
                        'show it in a window')
    parser.add_argument('--device', default=None,
                        help='device used for inference (default: cuda:0 '
                        'where available, else cpu)')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the painted segmentation, in (0, 1]')
    parser.add_argument('--with-labels', action='store_true',
                        help='write class names on the overlay')
    parser.add_argument('--title', default='result',
                        help='the window title of the shown overlay')
    parser.add_argument('--force', action='store_true',
                        help='replace an existing --out-file')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if osp.isdir(args.img):
        command = shlex.join(['python', 'tools/segment_folder.py',
                              args.img, args.config, args.checkpoint])
        sys.exit(f'error: {args.img!r} is a folder; this demo segments one '
                 'image. Segment every image of a folder with '
                 f'`{command} --out-dir DIR [--overlay] [--recursive]`.')
    try:
        if args.out_file:  # before the model is loaded, not after
            refuse_to_overwrite(args.out_file, args.force)
        image = read_image(args.img)
        model = init_model(args.config, args.checkpoint, device=args.device)
        result = inference_model(model, image)
    except (OSError, ValueError) as err:
        sys.exit(f'error: {err}')
    draw = dict(opacity=args.opacity, with_labels=args.with_labels,
                title=args.title)
    if not args.out_file:
        show_result_pyplot(model, image, result, show=True, **draw)
        return
    ext = osp.splitext(args.out_file)[1] or '.png'
    with atomic_path(args.out_file, overwrite=args.force) as tmp:
        # The encoder follows the extension: keep it on the temporary file.
        show_result_pyplot(model, image, result, show=False,
                           out_file=tmp + ext, **draw)
        os.replace(tmp + ext, tmp)
    print(f'Overlay written to {args.out_file}')
