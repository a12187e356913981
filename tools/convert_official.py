"""Convert a released RepMLPNet ImageNet checkpoint for the backbone.

    python tools/convert_official.py RepMLPNet-B256-train-acc81.03.pth \
        pretrain/repmlpnet_b256_in1k.pth
"""
import argparse
import sys

from mmseg_repmlp.checkpoint import (atomic_save, convert_official,
                                     detect_layout, infer_arch,
                                     safe_torch_load)
from mmseg_repmlp.checkpoint.official import describe_arch


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='released checkpoint (.pth)')
    parser.add_argument('dst', help='converted backbone state dict (.pth)')
    parser.add_argument(
        '--force', action='store_true', help='overwrite dst if it exists')
    return parser.parse_args()


def main():
    args = parse_args()
    try:
        convert(args)
    except (OSError, ValueError) as err:
        sys.exit(f'error: {err}')


def convert(args):
    state = convert_official(safe_torch_load(args.src))
    atomic_save(state, args.dst, overwrite=args.force)
    layout = detect_layout(state)
    print(f'{args.src}: {describe_arch(infer_arch(state))}, {layout} '
          f'structure, {len(state)} tensors -> {args.dst}')
    if layout == 'deploy':
        print("Build the backbone with deploy=True to load it.")


if __name__ == '__main__':
    main()
