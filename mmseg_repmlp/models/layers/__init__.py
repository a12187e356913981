from .conv_bn import ConvBN
from .repmlp_block import GlobalPerceptron, RepMLPBlock
from .repmlp_unit import FFNBlock, RepMLPNetUnit
from .window import pad_to_multiple, window_partition, window_reverse

__all__ = [
    'ConvBN', 'GlobalPerceptron', 'RepMLPBlock', 'FFNBlock', 'RepMLPNetUnit',
    'pad_to_multiple', 'window_partition', 'window_reverse'
]
