"""Interrupted and resumed training, crashes while writing, NaN losses."""
import re
import signal

import pytest
import torch
from mmengine.fileio import get_file_backend

from mmseg_repmlp.checkpoint.resume import find_resumable_checkpoint
from mmseg_repmlp.engine.hooks import StopOnNonFiniteLossHook

from ..conftest import (
    CONFIG,
    probe_config,
    probe_env,
    run,
    tool,
    train_options,
)

DETERMINISTIC = ['randomness.deterministic=True', 'randomness.seed=0',
                 'train_cfg.val_interval=100']


def _train_cmd(root, work, iters, *extra):
    return [*tool('train.py'), CONFIG, '--work-dir', work,
            *train_options(root, iters, 2, *DETERMINISTIC,
                           'default_hooks.checkpoint.max_keep_ckpts=10'),
            *extra]


def test_sigkill_then_resume_reaches_the_same_weights(tiny_cityscapes,
                                                      tmp_path):
    reference = tmp_path / 'reference'
    run(_train_cmd(tiny_cityscapes, reference, 8))

    # Killed from inside the run at the end of iteration 5, after iter_4.pth
    # and its twin and before iter_6.pth: no timing, no race.
    work = tmp_path / 'killed'
    config = probe_config(tmp_path, dict(type='KillAtIterationHook',
                                         iteration=5))
    cmd = _train_cmd(tiny_cityscapes, work, 8)
    cmd[cmd.index(CONFIG)] = config
    done = run(cmd, env=probe_env(), check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    assert 'Iter(train) [5/8]' in done.stdout + done.stderr
    assert (work / 'iter_4.pth').is_file()
    assert (work / 'iter_4_deploy.pth').is_file()
    assert not (work / 'iter_6.pth').exists()

    done = run([*_train_cmd(tiny_cityscapes, work, 8), '--resume'])
    assert 'resumed epoch: 0, iter: 4' in done.stdout + done.stderr
    final = torch.load(work / 'iter_8.pth')['state_dict']
    expected = torch.load(reference / 'iter_8.pth')['state_dict']
    assert final.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(final[key], value), key


def test_resume_skips_a_truncated_newest_checkpoint(tiny_cityscapes,
                                                    tmp_path):
    work = tmp_path / 'work'
    run(_train_cmd(tiny_cityscapes, work, 4))
    good = work / 'iter_2.pth'
    cut = work / 'iter_4.pth'
    cut.write_bytes(cut.read_bytes()[:1000])  # as if killed mid-write
    assert find_resumable_checkpoint(str(work)) == str(good)
    (work / 'last_checkpoint').unlink()
    assert find_resumable_checkpoint(str(work)) == str(good)
    done = run([*_train_cmd(tiny_cityscapes, work, 6), '--resume'])
    assert 'resumed epoch: 0, iter: 2' in done.stdout + done.stderr


@pytest.mark.parametrize('backend_args', [
    dict(backend='atomic_local'),
    # Any local path, whatever the config's schedule says: the safety
    # travels with `import mmseg_repmlp`, not with one schedule file.
    None,
])
def test_checkpoint_backend_writes_atomically(tmp_path, monkeypatch,
                                              backend_args):
    path = tmp_path / 'iter_2.pth'
    backend = get_file_backend(str(path), backend_args=backend_args)
    backend.put(b'complete checkpoint', str(path))

    import os
    real_fsync = os.fsync

    def crash(fd):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(OSError, match='disk full'):
        backend.put(b'new but cut short', str(path))
    monkeypatch.setattr(os, 'fsync', real_fsync)
    assert path.read_bytes() == b'complete checkpoint'
    assert [p.name for p in tmp_path.iterdir()] == ['iter_2.pth']


def test_nan_loss_stops_the_run_before_saving(tiny_cityscapes, tmp_path):
    work = tmp_path / 'nan'
    done = run([*tool('train.py'), CONFIG, '--work-dir', work,
                *train_options(tiny_cityscapes, 6, 1,
                               'optim_wrapper.optimizer.lr=1e30',
                               # the deploy hook's check would stop it too
                               'custom_hooks.0.verify=False',
                               'param_scheduler.0.start_factor=1.0')],
               check=False)
    assert done.returncode != 0
    assert re.search(r'Non-finite (loss|weights|logits)', done.stderr), \
        done.stderr[-3000:]
    assert not (work / 'iter_6.pth').exists()
    for path in work.glob('*.pth'):  # checkpoints and deploy twins
        state = torch.load(path)['state_dict']
        assert all(torch.isfinite(v).all() for v in state.values()
                   if v.is_floating_point()), path.name


def test_nonfinite_hook_names_the_iteration():
    from types import SimpleNamespace

    from mmengine.logging import MessageHub
    runner = SimpleNamespace(iter=41, message_hub=MessageHub.get_instance(
        'nonfinite-test'))
    hook = StopOnNonFiniteLossHook()
    hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(1.0)})
    with pytest.raises(FloatingPointError, match='loss at iteration 42'):
        hook.after_train_iter(
            runner, 0, outputs={'loss': torch.tensor(float('nan')),
                                'decode.acc_seg': torch.tensor(3.0)})

    state = {'w': torch.tensor([1.0, float('inf')]), 'n': torch.tensor(3)}
    with pytest.raises(FloatingPointError, match='weights at iteration 41'):
        hook.before_save_checkpoint(runner, {'state_dict': state})
