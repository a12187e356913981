"""Prepares Cityscapes for training: polygons -> ``*_labelTrainIds.png``.

Usage (real Cityscapes or the synthetic one)::

    python tools/dataset_converters/cityscapes.py data/cityscapes --nproc 8

Writes ``gtFine/<split>/<city>/*_gtFine_labelTrainIds.png`` with the official
``cityscapesscripts`` toolkit and the split lists
``<root>/{train,val,test}.txt`` like MMSegmentation's converter of the same
name. This script is a thin wrapper around
:func:`mmseg_repmlp.dataset_converters.convert_cityscapes`.
"""
import argparse
import json

from ..dataset_converters import convert_cityscapes


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert Cityscapes polygon annotations to '
        'labelTrainIds images and write the split lists.')
    parser.add_argument('cityscapes_path',
                        help='folder holding gtFine/ and leftImg8bit/')
    parser.add_argument('--nproc', default=1, type=int,
                        help='number of worker processes')
    parser.add_argument('--splits', nargs='+',
                        default=['train', 'val', 'test'],
                        help='splits to convert (missing ones are skipped)')
    parser.add_argument('--overwrite', action='store_true',
                        help='also regenerate existing labelTrainIds images')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    summary = convert_cityscapes(args.cityscapes_path, nproc=args.nproc,
                                 splits=args.splits,
                                 overwrite=args.overwrite)
    print(json.dumps(summary, indent=2))

