from .deploy_hook import RepMLPDeployHook

__all__ = ['RepMLPDeployHook']
