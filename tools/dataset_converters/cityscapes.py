"""Prepare Cityscapes (real or synthetic) for training:
``python tools/dataset_converters/cityscapes.py data/cityscapes --nproc 8``
writes ``*_gtFine_labelTrainIds.png`` and the split lists.

The logic lives in :mod:`mmseg_repmlp.cli.convert_cityscapes`.
"""
from mmseg_repmlp.cli.convert_cityscapes import main

if __name__ == '__main__':
    main()
