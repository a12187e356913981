"""``tools/reparam.py``: re-parameterize a checkpoint trained without the hook.

    python tools/reparam.py CONFIG iter_80000.pth iter_80000_deploy.pth \
        [--verify [IMAGE]] [--force]

``--verify`` runs both models on an image (a random one of the config's crop
size when none is given) and compares their segmentation logits and label
maps; the deploy checkpoint is written only if they agree.
"""
import argparse
import sys
from typing import List, Optional

import torch
from mmengine.config import Config, DictAction

from ..apis import inference_model, init_model
from ..checkpoint.deploy_ckpt import make_deploy_checkpoint, read_checkpoint
from ..deploy import reparameterize_model
from ..utils.compare import label_agreement, max_relative_difference
from ..utils.fileio import atomic_save
from ..utils.sizes import check_size


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write the deploy (re-parameterized) twin of a '
        'training checkpoint.')
    parser.add_argument('config', help='training config')
    parser.add_argument('checkpoint', help='training checkpoint')
    parser.add_argument('out', help='deploy checkpoint to write')
    parser.add_argument(
        '--verify',
        nargs='?',
        const='',
        default=None,
        metavar='IMAGE',
        help='compare both models on IMAGE (default: a random input)')
    parser.add_argument(
        '--tolerance', type=float, default=1e-4,
        help='largest relative logit difference accepted')
    parser.add_argument('--force', action='store_true',
                        help='overwrite OUT if it exists')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


@torch.no_grad()
def verify_on_image(cfg: Config, checkpoint: str, image: str,
                    tolerance: float) -> None:
    """Compare training-time and deploy models on ``image``; raise if off."""
    model = init_model(cfg, checkpoint, device='cpu', deploy=False)
    deployed = reparameterize_model(model)
    ref, out = inference_model(model, image), inference_model(deployed, image)
    ref_logits = ref.seg_logits.data
    rel = max_relative_difference(out.seg_logits.data, ref_logits)
    agreement = label_agreement(out.pred_sem_seg.data, ref.pred_sem_seg.data,
                                ref_logits[None], tolerance)
    ties = agreement.near_ties
    print(f'{image}: max relative logit difference {rel:.2e} '
          f'(tolerance {tolerance:g}); label maps '
          f'{"identical" if agreement.identical else "DIFFER"}'
          + (f' ({ties} near-tie pixels not compared)' if ties else ''))
    if not (rel <= tolerance and agreement.identical):
        raise RuntimeError('The deploy model does not reproduce the '
                           'training model; nothing was written.')


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        if args.verify:
            verify_on_image(cfg, args.checkpoint, args.verify, args.tolerance)
        size = check_size(cfg) if args.verify == '' else None
        deploy_ckpt, rel = make_deploy_checkpoint(
            cfg, read_checkpoint(args.checkpoint), verify_size=size,
            tolerance=args.tolerance, source=args.checkpoint)
        if rel is not None:
            print(f'random {size[0]}x{size[1]} input: max relative logit '
                  f'difference {rel:.2e} (tolerance {args.tolerance:g})')
        atomic_save(deploy_ckpt, args.out, overwrite=args.force)
    except (OSError, ValueError, RuntimeError) as err:
        sys.exit(f'error: {err}')
    print(f'Deploy checkpoint written to {args.out}')
