"""Run the built-in demo (``make demo``); see :mod:`mmseg_repmlp.cli.demo`."""
from mmseg_repmlp.cli.demo import main

if __name__ == '__main__':
    main()
