"""Run the built-in demo (``make demo``); see :mod:`mmseg_repmlp.apis.demo`."""
from mmseg_repmlp.apis.demo import main

if __name__ == '__main__':
    main()
