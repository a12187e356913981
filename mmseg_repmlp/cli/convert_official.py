"""``tools/convert_official.py``: a released ImageNet checkpoint -> backbone
weights (:func:`~mmseg_repmlp.models.utils.ckpt_convert.convert_official`).

    python tools/convert_official.py RepMLPNet-B256-train-acc81.03.pth \
        pretrain/repmlpnet-b256_in1k.pth
"""
import argparse
import sys
from typing import List, Optional

from ..models.utils.ckpt_convert import (
    convert_official,
    describe_arch,
    detect_layout,
    infer_arch,
)
from ..utils.fileio import atomic_save, safe_torch_load


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a released RepMLPNet ImageNet checkpoint for '
        'the backbone.')
    parser.add_argument('src', help='released checkpoint (.pth)')
    parser.add_argument('dst', help='converted backbone state dict (.pth)')
    parser.add_argument(
        '--force', action='store_true', help='overwrite dst if it exists')
    return parser.parse_args(argv)


def convert(src: str, dst: str, force: bool = False) -> str:
    """Convert ``src`` into ``dst``; return a one-line summary."""
    state = convert_official(safe_torch_load(src))
    atomic_save(state, dst, overwrite=force)
    layout = detect_layout(state)
    summary = (f'{src}: {describe_arch(infer_arch(state))}, {layout} '
               f'structure, {len(state)} tensors -> {dst}')
    if layout == 'deploy':
        summary += '\nBuild the backbone with deploy=True to load it.'
    return summary


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    try:
        print(convert(args.src, args.dst, args.force))
    except (OSError, ValueError) as err:
        sys.exit(f'error: {err}')
