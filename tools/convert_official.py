"""Convert a released RepMLPNet ImageNet checkpoint for the backbone:
``python tools/convert_official.py SRC DST [--force]``.

The logic lives in :mod:`mmseg_repmlp.cli.convert_official`.
"""
from mmseg_repmlp.cli.convert_official import main

if __name__ == '__main__':
    main()
