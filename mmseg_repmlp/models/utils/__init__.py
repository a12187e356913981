from . import reparam

__all__ = ['reparam']
