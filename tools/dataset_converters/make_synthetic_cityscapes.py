"""Writes a small procedural street-scene dataset in the Cityscapes layout.

Usage::

    python tools/dataset_converters/make_synthetic_cityscapes.py \
        data/synthetic_cityscapes --num-train 40 --num-val 10
    python tools/dataset_converters/cityscapes.py data/synthetic_cityscapes

The second command is the same preparation step as for the real Cityscapes.
This script is a thin wrapper around
:func:`mmseg_repmlp.datasets.generate_synthetic_cityscapes`.
"""
import argparse
import json

from mmseg_repmlp.datasets import generate_synthetic_cityscapes


def parse_args():
    parser = argparse.ArgumentParser(
        description='Generate a synthetic street-scene dataset in the '
        'Cityscapes layout (leftImg8bit/ + gtFine/ polygons).')
    parser.add_argument('root', help='output folder (new, empty, or an '
                        'earlier synthetic generation)')
    parser.add_argument('--num-train', type=int, default=40)
    parser.add_argument('--num-val', type=int, default=10)
    parser.add_argument('--height', type=int, default=256)
    parser.add_argument('--width', type=int, default=512)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true',
                        help='regenerate an earlier synthetic generation')
    return parser.parse_args()


def main():
    args = parse_args()
    summary = generate_synthetic_cityscapes(
        args.root, num_train=args.num_train, num_val=args.num_val,
        height=args.height, width=args.width, seed=args.seed,
        overwrite=args.overwrite)
    for split in summary['splits'].values():
        split.pop('images', None)  # long; the split lists hold them
    print(json.dumps(summary, indent=2))
    if not summary['generated']:
        print('Kept the existing dataset; pass --overwrite to regenerate it.')


if __name__ == '__main__':
    main()
