"""Test-only hooks for training runs of the tool tests.

A run imports this module through ``custom_imports`` (see
``tests/conftest.py:probe_config``, which puts the repository on
PYTHONPATH); no other run does. Importing it also records every deploy
twin written by :class:`~mmseg_repmlp.engine.RepMLPDeployHook` in
``deploy_writes_rank<r>.txt`` beside the twin, one line per write, so that a
test can count the writes of each rank.
"""
import os
import os.path as osp
import signal

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from mmseg_repmlp.engine.hooks import deploy_hook

_atomic_save = deploy_hook.atomic_save


def _recorded_atomic_save(obj, path, *args, **kwargs):
    record = osp.join(osp.dirname(path), f'deploy_writes_rank{get_rank()}.txt')
    with open(record, 'a') as f:
        f.write(osp.basename(path) + '\n')
    return _atomic_save(obj, path, *args, **kwargs)


deploy_hook.atomic_save = _recorded_atomic_save


@HOOKS.register_module()
class KillAtIterationHook(Hook):
    """SIGKILL the run at the end of iteration ``iteration`` (1-based),
    after every other hook of that iteration (checkpoint, deploy twin)."""

    priority = 'LOWEST'

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class SaveRankWeightsHook(Hook):
    """Save this rank's parameters to ``weights_rank<r>_<when>.pth`` in the
    work dir, before and after training."""

    priority = 'LOWEST'

    def _save(self, runner, when: str) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        torch.save({k: v.detach().cpu().clone()
                    for k, v in model.named_parameters()},
                   osp.join(runner.work_dir,
                            f'weights_rank{get_rank()}_{when}.pth'))

    def before_train(self, runner) -> None:
        self._save(runner, 'start')

    def after_train(self, runner) -> None:
        self._save(runner, 'end')
