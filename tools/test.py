"""Test a segmentor: ``python tools/test.py CONFIG CHECKPOINT [--out DIR] ...``.

Arguments are MMSegmentation's (see ``--help``); either a training or a
deploy checkpoint works. The logic lives in :mod:`mmseg_repmlp.cli.test`.
"""
from mmseg_repmlp.cli.test import main

if __name__ == '__main__':
    main()
