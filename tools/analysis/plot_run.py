"""Pictures of a training run: val panel, training curves, per-class IoU.

``python tools/analysis/plot_run.py WORK_DIR [--config] [--checkpoint]
[--out-dir]``; see :mod:`mmseg_repmlp.cli.plot_run` (``--help`` lists the
arguments).
"""
from mmseg_repmlp.cli.plot_run import main

if __name__ == '__main__':
    main()
