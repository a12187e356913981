from .hooks import RepMLPDeployHook

__all__ = ['RepMLPDeployHook']
