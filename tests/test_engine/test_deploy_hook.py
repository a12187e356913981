"""RepMLPDeployHook on its own: rank 0 only, pruning, verification, atomicity."""
import logging
import shutil
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub

from mmseg_repmlp.checkpoint import atomic_save
from mmseg_repmlp.engine.hooks import deploy_hook as hook_module
from mmseg_repmlp.engine.hooks.deploy_hook import RepMLPDeployHook

from ..conftest import CONFIG


def _runner(tmp_path, trained, name='hub'):
    work, _ = trained
    src = tmp_path / 'iter_4.pth'
    shutil.copy(work / 'iter_4.pth', src)
    hub = MessageHub.get_instance(f'{name}-{tmp_path.name}')
    hub.update_info('last_ckpt', str(src))
    runner = SimpleNamespace(cfg=Config.fromfile(CONFIG), message_hub=hub,
                             logger=logging.getLogger('test'))
    return runner, src


def test_only_rank_zero_writes(tmp_path, trained, monkeypatch):
    runner, src = _runner(tmp_path, trained)
    monkeypatch.setattr(hook_module, 'is_main_process', lambda: False)
    RepMLPDeployHook().after_train_iter(runner, 0)
    assert not (tmp_path / 'iter_4_deploy.pth').exists()
    monkeypatch.setattr(hook_module, 'is_main_process', lambda: True)
    RepMLPDeployHook().after_train_iter(runner, 0)
    assert (tmp_path / 'iter_4_deploy.pth').is_file()


def test_twin_follows_its_checkpoint(tmp_path, trained):
    runner, src = _runner(tmp_path, trained)
    hook = RepMLPDeployHook()
    hook.after_train_iter(runner, 0)
    twin = tmp_path / 'iter_4_deploy.pth'
    first = twin.stat().st_mtime_ns
    hook.after_train_iter(runner, 1)  # nothing new: not rewritten
    assert twin.stat().st_mtime_ns == first
    src.unlink()  # as CheckpointHook does past max_keep_ckpts
    hook.after_val_epoch(runner)
    assert not twin.exists()


def test_user_file_with_a_twin_name_is_not_removed(tmp_path, trained):
    runner, src = _runner(tmp_path, trained)
    mine = tmp_path / 'other_deploy.pth'
    mine.write_bytes(b'user data')
    RepMLPDeployHook().after_train_iter(runner, 0)
    assert mine.read_bytes() == b'user data'


def test_failed_verification_stops_and_writes_nothing(tmp_path, trained,
                                                      monkeypatch):
    runner, src = _runner(tmp_path, trained)
    from mmseg_repmlp.checkpoint import deploy_ckpt

    real = deploy_ckpt.reparameterize_model

    def broken(model, inplace=False):
        out = real(model, inplace)
        with torch.no_grad():
            out.decode_head.conv_seg.bias.add_(1.0)
        return out

    monkeypatch.setattr(deploy_ckpt, 'reparameterize_model', broken)
    hook = RepMLPDeployHook(verify=True, verify_size=(64, 128))
    with pytest.raises(RuntimeError, match='differs from it by'):
        hook.after_train_iter(runner, 0)
    assert not (tmp_path / 'iter_4_deploy.pth').exists()


def test_verification_passes_and_is_recorded(tmp_path, trained):
    runner, src = _runner(tmp_path, trained)
    RepMLPDeployHook(verify=True, verify_size=(64, 96)).after_train_iter(
        runner, 0)
    meta = torch.load(tmp_path / 'iter_4_deploy.pth',
                      weights_only=True)['meta']
    assert 0 <= meta['verified_rel_diff'] <= 1e-4


def test_atomic_save_keeps_the_old_file_on_a_crash(tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.pth'
    atomic_save({'a': torch.ones(3)}, str(path))

    def crash(obj, f, *args, **kwargs):
        f.write(b'half a checkpoint')
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, 'save', crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({'a': torch.zeros(3)}, str(path))
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)['a'],
                       torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ['ckpt.pth']


def test_atomic_save_refuses_to_overwrite_when_asked(tmp_path):
    path = tmp_path / 'x.pth'
    path.write_bytes(b'keep')
    with pytest.raises(FileExistsError, match='--force'):
        atomic_save({}, str(path), overwrite=False)
    assert path.read_bytes() == b'keep'
