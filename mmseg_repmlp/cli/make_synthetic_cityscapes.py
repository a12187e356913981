"""Writes a small procedural street-scene dataset in a real dataset's layout.

Usage::

    python tools/dataset_converters/make_synthetic_cityscapes.py \
        data/synthetic_cityscapes --num-train 40 --num-val 10
    python tools/dataset_converters/cityscapes.py data/synthetic_cityscapes

The second command is the same preparation step as for the real Cityscapes.
With ``--layout ade20k`` the same scenes are written as ADEChallengeData2016
(``images/`` JPEGs and ``annotations/`` PNG label maps), ready for
MMSegmentation's ``ADE20KDataset`` without a preparation step::

    python tools/dataset_converters/make_synthetic_cityscapes.py \
        data/ade/ADEChallengeData2016 --layout ade20k

This script is a thin wrapper around
:func:`mmseg_repmlp.synthetic.generate_synthetic_cityscapes` and
:func:`mmseg_repmlp.synthetic.generate_synthetic_ade20k`.
"""
import argparse
import json

from ..synthetic import (
    generate_synthetic_ade20k,
    generate_synthetic_cityscapes,
)

WRITERS = dict(cityscapes=generate_synthetic_cityscapes,
               ade20k=generate_synthetic_ade20k)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate a synthetic street-scene dataset in the '
        'Cityscapes layout (leftImg8bit/ + gtFine/ polygons) or the ADE20K '
        'layout (images/ + annotations/).')
    parser.add_argument('root', help='output folder (new, empty, or an '
                        'earlier synthetic generation)')
    parser.add_argument('--layout', choices=sorted(WRITERS),
                        default='cityscapes',
                        help='dataset layout to write (default: cityscapes)')
    parser.add_argument('--num-train', type=int, default=40)
    parser.add_argument('--num-val', type=int, default=10)
    parser.add_argument('--height', type=int, default=256)
    parser.add_argument('--width', type=int, default=512)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true',
                        help='regenerate an earlier synthetic generation')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    summary = WRITERS[args.layout](
        args.root, num_train=args.num_train, num_val=args.num_val,
        height=args.height, width=args.width, seed=args.seed,
        overwrite=args.overwrite)
    for split in summary['splits'].values():
        split.pop('images', None)  # long; the folders hold them
    print(json.dumps(summary, indent=2))
    if not summary['generated']:
        print('Kept the existing dataset; pass --overwrite to regenerate it.')

