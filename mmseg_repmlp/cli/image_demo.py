"""``tools/image_demo.py``: segment one image and write a colour overlay.

    python tools/image_demo.py IMG CONFIG CHECKPOINT --out-file result.png
"""
import argparse
import sys
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('img', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='training or deploy checkpoint')
    parser.add_argument('--out-file', required=True,
                        help='where to write the overlay (PNG)')
    parser.add_argument('--device', default='cpu',
                        help='device used for inference')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the painted segmentation, in (0, 1]')
    parser.add_argument('--with-labels', action='store_true',
                        help='write class names on the overlay')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from ..apis import (
        inference_model,
        init_model,
        read_image,
        show_result_pyplot,
    )
    try:
        image = read_image(args.img)
        model = init_model(args.config, args.checkpoint, device=args.device)
        result = inference_model(model, image)
    except (OSError, ValueError) as err:
        sys.exit(f'error: {err}')
    show_result_pyplot(model, image, result, opacity=args.opacity,
                       with_labels=args.with_labels, show=False,
                       out_file=args.out_file)
    print(f'Overlay written to {args.out_file}')
