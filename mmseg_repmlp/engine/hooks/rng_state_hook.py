"""Save the random generators' states in checkpoints, restore them on resume."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Make ``--resume`` continue the random streams of the interrupted run.

    MMEngine restores the weights, optimizer, schedulers and data position,
    but not the main process's random generators, which dropout and (with
    ``num_workers=0``) augmentation draw from. With them restored, a resumed
    run reaches the same weights as one that was never interrupted (on the
    same machine, with deterministic settings). The states are plain tensors,
    tuples and numpy arrays, which the safe loader accepts.
    """

    priority = 'NORMAL'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(
            python=random.getstate(),
            numpy=np.random.get_state(),
            torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = state

    def __init__(self) -> None:
        self._pending = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # Only a resumed run continues the streams (not load_from).
        if runner.cfg.get('resume', False):
            self._pending = checkpoint.get('rng_state')

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        # Restored here, not on load: between loading and the first
        # iteration the resumed run creates its data iterator (which draws
        # a seed) and skips the batches already trained on, which the
        # interrupted run did not do at this point.
        state, self._pending = self._pending, None
        if not state:
            return
        random.setstate(state['python'])
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
