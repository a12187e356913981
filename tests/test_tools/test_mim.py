"""``mim train`` / ``mim test`` from a normal (non-editable) install."""
import shutil
import sys
from pathlib import Path

from mmseg_repmlp.cli.demo import DEMO_CONFIG

from ..conftest import REPO, env_without_pythonpath, run, train_options


def test_mim_train_and_test_from_a_wheel(tiny_cityscapes, tmp_path):
    dist = tmp_path / 'dist'
    src = tmp_path / 'src'
    # Build from a copy: building writes mmseg_repmlp/.mim into the tree.
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        '.venv', '.git', 'work_dirs', '*.egg-info', 'build', '__pycache__'))
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
         '--no-build-isolation', '-w', dist, src], timeout=300)
    wheel = next(dist.glob('mmseg_repmlp-*.whl'))
    site = tmp_path / 'site'
    run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--target',
         site, wheel], timeout=300)
    pkg = site / 'mmseg_repmlp' / '.mim'
    assert (pkg / 'tools' / 'train.py').is_file()
    assert (pkg / 'configs' / DEMO_CONFIG).is_file()

    env = env_without_pythonpath()
    env['PYTHONPATH'] = str(site)  # the wheel's copy, not the checkout
    mim = [sys.executable, '-m', 'mim']
    work = tmp_path / 'work'
    config = Path(DEMO_CONFIG).name  # found inside the installed package
    done = run([*mim, 'train', 'mmseg_repmlp', config, '--work-dir', work,
                *train_options(tiny_cityscapes, 2, 2)], cwd=tmp_path, env=env)
    assert str(pkg / 'tools' / 'train.py') in done.stdout
    assert (work / 'iter_2_deploy.pth').is_file()
    done = run([*mim, 'test', 'mmseg_repmlp', config, '--checkpoint',
                work / 'iter_2_deploy.pth', '--work-dir', tmp_path / 't',
                '--cfg-options',
                f'test_dataloader.dataset.data_root={tiny_cityscapes}'],
               cwd=tmp_path, env=env)
    assert 'mIoU' in done.stdout + done.stderr

    # A config of the user's, outside any checkout, inherits by package.
    mine = tmp_path / 'my_config.py'
    mine.write_text("_base_ = ['mmseg_repmlp::custom/upernet_repmlpnet-t256_"
                    "1xb4-20k_custom-512x512.py']\n"
                    "train_dataloader = dict(dataset=dict(data_root='x'))\n")
    done = run([sys.executable, '-c',
                'import mmseg_repmlp\nfrom mmengine.config import Config\n'
                f'cfg = Config.fromfile({str(mine)!r})\n'
                'print(mmseg_repmlp.__file__, cfg.model.decode_head.num_classes,'
                ' cfg.train_dataloader.dataset.data_root)'], cwd=tmp_path,
               env=env)
    assert done.stdout.split() == [
        str(site / 'mmseg_repmlp' / '__init__.py'), '3', 'x']
