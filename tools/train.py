"""Train a segmentor: ``python tools/train.py CONFIG [--work-dir DIR] ...``.

Arguments are MMSegmentation's (see ``--help``); the logic lives in
:mod:`mmseg_repmlp.cli.train`.
"""
from mmseg_repmlp.cli.train import main

if __name__ == '__main__':
    main()
