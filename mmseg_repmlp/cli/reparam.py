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
    from ..apis import inference_model, init_model
    from ..deploy import reparameterize_model
    model = init_model(cfg, checkpoint, device='cpu', deploy=False)
    deployed = reparameterize_model(model)
    ref, out = inference_model(model, image), inference_model(deployed, image)
    ref_logits, logits = ref.seg_logits.data, out.seg_logits.data
    rel = float((logits - ref_logits).abs().max() / ref_logits.abs().max())
    from ..deploy import near_ties
    decided = torch.from_numpy(~near_ties(ref_logits[None].numpy(),
                                          tolerance)[0])
    same = torch.equal(ref.pred_sem_seg.data[0][decided],
                       out.pred_sem_seg.data[0][decided])
    ties = int((~decided).sum())
    print(f'{image}: max relative logit difference {rel:.2e} '
          f'(tolerance {tolerance:g}); label maps '
          f'{"identical" if same else "DIFFER"}'
          + (f' ({ties} near-tie pixels not compared)' if ties else ''))
    if not (rel <= tolerance and same):
        raise RuntimeError('The deploy model does not reproduce the '
                           'training model; nothing was written.')


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    import mmseg_repmlp  # noqa: F401
    from ..checkpoint.deploy_ckpt import (make_deploy_checkpoint,
                                          read_checkpoint)
    from ..utils.fileio import atomic_save
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        if args.verify:
            verify_on_image(cfg, args.checkpoint, args.verify, args.tolerance)
        size = None
        if args.verify == '':
            size = tuple(cfg.model.get('data_preprocessor', {}).get(
                'size') or (512, 512))
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
