"""INT8 error and OpenVINO latency of deploy RepMLPNet against ResNet.

``python tools/analysis/int8_backbones.py [--arch B256] [--size H W]``; see
:mod:`mmseg_repmlp.cli.int8_backbones` (``--help`` lists the arguments).
"""
from mmseg_repmlp.cli.int8_backbones import main

if __name__ == '__main__':
    main()
