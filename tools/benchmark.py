"""Benchmark UPerNet + RepMLPNet against MMSegmentation baselines:
``python tools/benchmark.py [--small] [--mode both] ...`` (see ``--help``).

The logic lives in :mod:`mmseg_repmlp.cli.benchmark`.
"""
from mmseg_repmlp.cli.benchmark import main

if __name__ == '__main__':
    main()
