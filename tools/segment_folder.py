"""See :mod:`mmseg_repmlp.cli.segment_folder` (``--help`` lists the
arguments)."""
from mmseg_repmlp.cli.segment_folder import main

if __name__ == '__main__':
    main()
