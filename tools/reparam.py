"""See :mod:`mmseg_repmlp.cli.reparam` (``--help`` lists the arguments)."""
from mmseg_repmlp.cli.reparam import main

if __name__ == '__main__':
    main()
