"""See :mod:`mmseg_repmlp.cli.test_exported` (``--help`` lists the
arguments)."""
from mmseg_repmlp.cli.test_exported import main

if __name__ == '__main__':
    main()
