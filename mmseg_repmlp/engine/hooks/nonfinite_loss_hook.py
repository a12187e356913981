"""Stop training at the first NaN/Inf loss or weight, before it is saved."""
import math

from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from torch import Tensor


@HOOKS.register_module()
class StopOnNonFiniteLossHook(Hook):
    """Raise ``FloatingPointError`` when a loss or a weight is NaN or Inf.

    Losses are checked after every iteration, before ``CheckpointHook``
    (higher priority) could save it; weights are checked in every checkpoint
    about to be written (an update can turn weights non-finite while the
    loss that produced it was still finite). Either way the last checkpoint
    on disk stays a good one.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not outputs:
            return
        bad = {}
        for name, value in outputs.items():
            if 'loss' not in name:
                continue
            number = float(value.detach() if isinstance(value, Tensor)
                           else value)
            if not math.isfinite(number):
                bad[name] = number
        if bad:
            self._stop(runner, f'loss at iteration {runner.iter + 1}: {bad}')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for name, value in checkpoint.get('state_dict', {}).items():
            if value.is_floating_point() and not value.isfinite().all():
                self._stop(runner, f'weights at iteration {runner.iter}: '
                           f'{name} holds NaN/Inf')

    @staticmethod
    def _stop(runner, what: str) -> None:
        last = runner.message_hub.get_info('last_ckpt')
        raise FloatingPointError(
            f'Non-finite {what}. Training stopped without saving it'
            + (f'; the last good checkpoint is {last}' if last else '') +
            '. Lower the learning rate, clip gradients '
            '(optim_wrapper.clip_grad=dict(max_norm=...)), or check the '
            'data and labels; then continue with --resume.')
