from .hooks import RepMLPDeployHook, RNGStateHook, StopOnNonFiniteLossHook

__all__ = ['RepMLPDeployHook', 'RNGStateHook', 'StopOnNonFiniteLossHook']
