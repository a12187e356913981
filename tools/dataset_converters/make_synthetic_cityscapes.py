"""Generate a synthetic street-scene dataset in the Cityscapes (or, with
``--layout ade20k``, the ADE20K) layout:
``python tools/dataset_converters/make_synthetic_cityscapes.py ROOT``.

The logic lives in :mod:`mmseg_repmlp.cli.make_synthetic_cityscapes`.
"""
from mmseg_repmlp.cli.make_synthetic_cityscapes import main

if __name__ == '__main__':
    main()
