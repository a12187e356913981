"""Multi-process training and testing through tools/dist_train.sh and
tools/dist_test.sh (torchrun, DDP on CPU with gloo, 2 processes)."""
import re
import socket
import sys

import torch

from ..conftest import (
    CONFIG,
    REPO,
    probe_config,
    probe_env,
    run,
    train_options,
)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _dist_env():
    return dict(probe_env(), PORT=str(_free_port()), PYTHON=sys.executable)


def test_two_process_ddp_training_and_testing(tiny_cityscapes, tmp_path):
    work = tmp_path / 'ddp'
    config = probe_config(tmp_path, dict(type='SaveRankWeightsHook'))
    done = run(['bash', REPO / 'tools' / 'dist_train.sh', config, 2,
                '--work-dir', work, *train_options(tiny_cityscapes, 2, 2)],
               env=_dist_env(), timeout=600)
    assert 'Distributed training: True' in done.stdout + done.stderr

    # Gradients are synchronised: the ranks train on different images, yet
    # end with the same parameters, which training changed; the checkpoint
    # holds them.
    start, end = ([torch.load(work / f'weights_rank{rank}_{when}.pth')
                   for rank in (0, 1)] for when in ('start', 'end'))
    assert end[0].keys() == end[1].keys()
    for key, value in end[0].items():
        assert torch.equal(value, end[1][key]), key
    changed = [k for k, v in end[0].items() if not torch.equal(v,
                                                               start[0][k])]
    assert len(changed) > len(end[0]) // 2
    saved = torch.load(work / 'iter_2.pth')['state_dict']
    for key, value in end[0].items():
        assert torch.equal(saved[key], value), key

    # Rank 0 alone writes the deploy twins, each once (probe_hooks records
    # every write of each rank).
    writes = (work / 'deploy_writes_rank0.txt').read_text().split()
    assert sorted(writes) == ['best_mIoU_iter_2_deploy.pth',
                              'iter_2_deploy.pth']
    assert not (work / 'deploy_writes_rank1.txt').exists()
    assert sorted(p.name for p in work.glob('*deploy*.pth')) == sorted(writes)
    assert not list(work.glob('.*.tmp'))

    # Each rank tests one of the two validation images; rank 0 gathers
    # the results.
    # Not made here: tools/test.py creates it before any rank writes
    # (MMSegmentation's IoUMetric creates it on rank 0 only).
    out = tmp_path / 'predictions'
    done = run(['bash', REPO / 'tools' / 'dist_test.sh', CONFIG,
                work / 'iter_2_deploy.pth', 2, '--work-dir', tmp_path / 'test',
                '--out', out, '--cfg-options',
                f'test_dataloader.dataset.data_root={tiny_cityscapes}'],
               env=_dist_env(), timeout=600)
    log = done.stdout + done.stderr
    assert 'Distributed training: True' in log  # MMEngine's env line
    assert re.search(r'mIoU: [0-9.]+', log), log[-2000:]
    assert len(list(out.rglob('*.png'))) == 2
