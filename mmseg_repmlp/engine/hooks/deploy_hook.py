"""Write a deploy (re-parameterized) twin of every checkpoint a run saves."""
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...checkpoint.deploy_ckpt import (
    deploy_path,
    make_deploy_checkpoint,
    read_checkpoint,
)
from ...utils.fileio import atomic_save
from ...utils.sizes import check_size


def _iteration(ckpt: dict) -> Optional[int]:
    """The training iteration a checkpoint was saved at (its meta)."""
    return (ckpt.get('meta') or {}).get('iter')


@HOOKS.register_module()
class RepMLPDeployHook(Hook):
    """Export ``X_deploy.pth`` beside each checkpoint ``X.pth``.

    Runs after MMEngine's ``CheckpointHook`` (lowest priority) and picks up
    what it wrote: the regular/last checkpoint and the best one
    (``last_ckpt``/``best_ckpt*`` in the message hub). The twin is made from
    the checkpoint file itself, on a copy of the model on the CPU, so the
    model being trained is never touched. Only rank 0 writes, atomically.
    When ``CheckpointHook`` deletes a checkpoint (``max_keep_ckpts``, a new
    best), the twin this hook wrote for it goes too.

    Args:
        verify (bool): Compare the segmentation logits of both models on a
            fixed random input after every conversion; a relative difference
            above ``tolerance`` stops the run. Default: False.
        verify_size (Sequence[int], optional): ``(H, W)`` of that input.
            Default: None (:func:`mmseg_repmlp.apis.check_size`: the data
            preprocessor's crop size, else 512x512).
        tolerance (float): See ``verify``. Default: 1e-4.
    """

    priority = 'LOWEST'

    def __init__(self,
                 verify: bool = False,
                 verify_size: Optional[Sequence[int]] = None,
                 tolerance: float = 1e-4) -> None:
        self.verify = verify
        self.verify_size = tuple(verify_size) if verify_size else None
        self.tolerance = tolerance
        # source checkpoint -> (its mtime, twin path, iteration converted at)
        self._twins: Dict[str, Tuple[float, str, Optional[int]]] = {}

    def _size(self, runner) -> Optional[Tuple[int, int]]:
        if not self.verify:
            return None
        if self.verify_size:
            return self.verify_size
        return check_size(runner.cfg)

    def _sources(self, runner):
        info = runner.message_hub.runtime_info
        for key, value in info.items():
            if key == 'last_ckpt' or key.startswith('best_ckpt'):
                if isinstance(value, str):
                    yield value

    def export(self, runner, src: str) -> Tuple[str, Optional[int]]:
        """Write the deploy twin of checkpoint ``src``; return its path and
        the iteration ``src`` was saved at."""
        dst = deploy_path(src)
        ckpt = read_checkpoint(src)
        deploy_ckpt, rel_diff = make_deploy_checkpoint(
            runner.cfg,
            ckpt,
            verify_size=self._size(runner),
            tolerance=self.tolerance,
            source=osp.basename(src))
        atomic_save(deploy_ckpt, dst)
        msg = f'Deploy checkpoint {dst} written'
        if rel_diff is not None:
            msg += (f' (verified: max relative logit difference '
                    f'{rel_diff:.2e} <= {self.tolerance:g})')
        runner.logger.info(msg)
        return dst, _iteration(ckpt)

    def _sync(self, runner) -> None:
        if not is_main_process():
            return
        for src in self._sources(runner):
            if not osp.isfile(src):
                continue
            mtime = osp.getmtime(src)
            known = self._twins.get(src)
            if known and osp.isfile(known[1]) and (
                    known[0] == mtime or known[2] == _iteration(
                        read_checkpoint(src, mmap=True))):
                # Unchanged, or saved again at the same iteration (MMEngine
                # re-saves the last checkpoint after a new best to update
                # its message hub): the weights, and so the twin, are the
                # same.
                self._twins[src] = (mtime, *known[1:])
                continue
            dst = deploy_path(src)
            if (known is None and osp.isfile(dst)
                    and osp.getmtime(dst) >= mtime):
                # Written by an earlier (resumed) run of this work dir.
                self._twins[src] = (mtime, dst, None)
                continue
            self._twins[src] = (mtime, *self.export(runner, src))
        for src, (_, dst, _) in list(self._twins.items()):
            if not osp.exists(src):
                if osp.isfile(dst):
                    os.remove(dst)
                    runner.logger.info(
                        f'Removed {dst}: its checkpoint was removed.')
                del self._twins[src]

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self._sync(runner)

    def after_train_epoch(self, runner) -> None:
        self._sync(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._sync(runner)

    def after_train(self, runner) -> None:
        self._sync(runner)
