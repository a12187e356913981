"""Install mmseg_repmlp.

mmcv 2.1.0 has no wheel for the pinned torch: install torch first, then build
mmcv with its ops (see the Makefile's ``install`` target, which does all of it).
A non-editable install also ships ``configs/``, ``tools/`` and
``model-index.yml`` inside the package as ``mmseg_repmlp/.mim`` so that
``mim train/test mmseg_repmlp`` and ``mmseg_repmlp::`` config bases find them.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def read_requirements(*names):
    reqs = []
    for name in names:
        with open(osp.join(HERE, 'requirements', name)) as f:
            for line in f:
                line = line.split('#')[0].strip()
                if line and not line.startswith('-'):
                    reqs.append(line)
    return reqs


def version():
    scope = {}
    with open(osp.join(HERE, 'mmseg_repmlp', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_extension():
    """Copy MIM_FILES into mmseg_repmlp/.mim for a wheel or sdist."""
    if not any(cmd in sys.argv
               for cmd in ('bdist_wheel', 'sdist', 'install', 'build')):
        return
    target_root = osp.join(HERE, 'mmseg_repmlp', '.mim')
    os.makedirs(target_root, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(HERE, name), osp.join(target_root, name)
        if osp.isdir(dst) and not osp.islink(dst):
            shutil.rmtree(dst)
        elif osp.lexists(dst):
            os.remove(dst)
        if osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)

if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmseg_repmlp',
        version=version(),
        description='RepMLPNet backbones for MMSegmentation: train with '
        'Locality Injection, deploy plain-FC models',
        long_description=open(osp.join(HERE, 'README.md')).read(),
        long_description_content_type='text/markdown',
        license='Apache License 2.0',
        python_requires='>=3.8',
        packages=find_packages(exclude=('tests', 'tests.*', 'tools',
                                        'configs')),
        include_package_data=True,
        package_data={'mmseg_repmlp': ['.mim/**/*']},
        install_requires=read_requirements('runtime.txt', 'mmcv.txt'),
        extras_require={
            'tests': read_requirements('tests.txt'),
            'openvino': read_requirements('openvino.txt'),
        },
        zip_safe=False)
