"""See :mod:`mmseg_repmlp.cli.image_demo` (``--help`` lists the arguments)."""
from mmseg_repmlp.cli.image_demo import main

if __name__ == '__main__':
    main()
