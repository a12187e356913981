"""Where this project's configs are: in a checkout, or inside an install."""
import os.path as osp

_PKG = osp.dirname(osp.dirname(osp.abspath(__file__)))


def configs_root() -> str:
    """``configs/`` of the checkout, else the installed ``.mim/configs``."""
    for root in (osp.join(osp.dirname(_PKG), 'configs'),
                 osp.join(_PKG, '.mim', 'configs')):
        if osp.isdir(root):
            return root
    raise FileNotFoundError(
        'No configs/ folder beside mmseg_repmlp and no .mim/configs inside '
        'it: reinstall the package (pip install .) or run from a checkout.')


def config_path(relative: str) -> str:
    """Absolute path of a shipped config, e.g. ``'demo/xxx.py'``."""
    path = osp.join(configs_root(), relative)
    if not osp.isfile(path):
        raise FileNotFoundError(f'No shipped config {relative!r} in '
                                f'{configs_root()}.')
    return path
