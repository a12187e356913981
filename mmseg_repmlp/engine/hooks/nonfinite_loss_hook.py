"""Stop training at the first NaN/Inf loss, before it reaches a checkpoint."""
import math

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class StopOnNonFiniteLossHook(Hook):
    """Raise ``FloatingPointError`` when a loss is NaN or infinite.

    Runs before ``CheckpointHook`` (higher priority), so the iteration that
    went wrong is never saved; the last checkpoint on disk is still good.
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
            number = float(value)
            if not math.isfinite(number):
                bad[name] = number
        if bad:
            last = runner.message_hub.get_info('last_ckpt')
            raise FloatingPointError(
                f'Non-finite loss at iteration {runner.iter + 1}: {bad}. '
                'Training stopped without saving this iteration'
                + (f'; the last good checkpoint is {last}' if last else '') +
                '. Lower the learning rate, clip gradients '
                '(optim_wrapper.clip_grad=dict(max_norm=...)), or check the '
                'data and labels; then continue with --resume.')
