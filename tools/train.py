"""Train a segmentor: ``python tools/train.py CONFIG [--work-dir DIR] ...``.

Arguments are MMSegmentation's (see ``--help``); the logic lives in
:mod:`mmseg_repmlp.apis.train`.
"""
from mmseg_repmlp.apis.train import main

if __name__ == '__main__':
    main()
