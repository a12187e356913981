"""See :mod:`mmseg_repmlp.cli.export_openvino` (``--help`` lists the
arguments)."""
from mmseg_repmlp.cli.export_openvino import main

if __name__ == '__main__':
    main()
