"""Dataset converters, as MMSegmentation's ``tools/dataset_converters``.

Importing this package does not import torch or mmseg.
"""
from .cityscapes import convert_cityscapes

__all__ = ['convert_cityscapes']
