"""Dataset preparation: the Cityscapes converter and a synthetic Cityscapes.

Both modules only need numpy, Pillow and (for the conversion)
``cityscapesscripts``; importing them does not import torch or mmseg.
"""
from .cityscapes_prep import convert_cityscapes
from .synthetic_cityscapes import generate_synthetic_cityscapes

__all__ = ['convert_cityscapes', 'generate_synthetic_cityscapes']
