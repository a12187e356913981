"""Multi-process training through MMEngine's launcher (DDP on CPU, gloo)."""
import socket
import sys

from ..conftest import CONFIG, REPO, run, train_options


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_ddp_training(tiny_cityscapes, tmp_path):
    work = tmp_path / 'ddp'
    done = run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        f'--master_port={_free_port()}', REPO / 'tools' / 'train.py', CONFIG,
        '--launcher', 'pytorch', '--work-dir', work,
        *train_options(tiny_cityscapes, 2, 2)
    ], timeout=600)
    log = done.stdout + done.stderr
    assert 'Distributed training: True' in log
    assert 'MMDistributedDataParallel' in log or 'world_size: 2' in log
    assert (work / 'iter_2.pth').is_file()
    assert (work / 'iter_2_deploy.pth').is_file()
    # Rank 0 alone writes: exactly one twin, no stray temporary files.
    assert sorted(p.name for p in work.glob('*deploy*')) == [
        'best_mIoU_iter_2_deploy.pth', 'iter_2_deploy.pth'
    ]
    assert not list(work.glob('.*.tmp'))
