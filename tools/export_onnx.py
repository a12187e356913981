"""See :mod:`mmseg_repmlp.cli.export_onnx` (``--help`` lists the arguments)."""
from mmseg_repmlp.cli.export_onnx import main

if __name__ == '__main__':
    main()
