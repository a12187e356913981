from .deploy_hook import RepMLPDeployHook
from .nonfinite_loss_hook import StopOnNonFiniteLossHook
from .rng_state_hook import RNGStateHook

__all__ = ['RepMLPDeployHook', 'StopOnNonFiniteLossHook', 'RNGStateHook']
