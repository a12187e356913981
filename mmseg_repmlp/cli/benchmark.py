"""Benchmark UPerNet + RepMLPNet (train and deploy structure, and the deploy
segmentor exported to ONNX in onnxruntime on the CPU) against
MMSegmentation's UPerNet ResNetV1c-50/101 and Swin-T baselines; or, given
CONFIG and CHECKPOINT, the model you trained (PyTorch deploy form, training
form of a training checkpoint, and each ``--onnx`` file exported from it).

    python tools/benchmark.py --small --mode both     # ~3 min on 2 CPU cores
    python tools/benchmark.py --device cuda --dtype bf16 --mode both \
        --shapes 512x1024 1024x2048 --cudnn-benchmark --cuda-graph \
        --out-json bench.json
    python tools/benchmark.py CONFIG CHECKPOINT --onnx model.onnx \
        --shape 512 1024 --threads 2
    python tools/benchmark.py --device cpu --scope backbone \
        --shape 512 1024 --candidates repmlp-deploy repmlp-train resnet101 \
        --engines torch-fp32 torch-bf16 onnxruntime-fp32 openvino-fp32 \
        openvino-bf16 --profile                # CPU engines side by side

Prints a markdown table per workload and writes every number with the
environment to ``--out-json``. The work is done by
:mod:`mmseg_repmlp.benchmark`.
"""
import argparse
from typing import List, Optional

from ..benchmark import (
    CANDIDATES,
    format_markdown,
    load_arch,
    parse_shape,
    resolve_settings,
    run_benchmark,
    write_json,
)
from ..benchmark.ablation import format_ablation, run_ablation
from ..benchmark.engines import ENGINES
from ..benchmark.own_model import check_onnx_files, default_shape
from ..benchmark.report import environment
from ..utils.fileio import refuse_to_overwrite


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Latency, throughput, memory, parameters and FLOPs of '
        'UPerNet + RepMLPNet and MMSegmentation UPerNet baselines, or of '
        'your own model (CONFIG CHECKPOINT). Options not given come from '
        '--small (if set), then the defaults.')
    parser.add_argument('config', nargs='?',
                        help='config of your model: time it instead of the '
                        'backbone comparison')
    parser.add_argument('checkpoint', nargs='?',
                        help='its training or deploy checkpoint')
    parser.add_argument('--onnx', nargs='+', metavar='FILE', default=[],
                        help='ONNX files exported from it '
                        '(tools/export_onnx.py), timed in onnxruntime next '
                        'to PyTorch')
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        help='default: cuda if available, else cpu')
    shapes = parser.add_mutually_exclusive_group()
    shapes.add_argument('--shape', nargs=2, type=int, metavar=('H', 'W'),
                        help='inference input size (default 1024 2048; with '
                        'CONFIG: the size of fixed-size --onnx files, else '
                        "the config's crop size)")
    shapes.add_argument('--shapes', nargs='+', metavar='HxW',
                        help='several inference sizes, e.g. 512x1024 '
                        '1024x2048')
    parser.add_argument('--batch', type=int, help='inference batch (1)')
    parser.add_argument('--dtype', choices=['fp32', 'bf16', 'fp16'],
                        help='autocast dtype (fp32 = no autocast)')
    parser.add_argument('--mode', choices=['inference', 'train', 'both'],
                        help='what to time (default: inference)')
    parser.add_argument('--scope', choices=['backbone', 'segmentor', 'both'],
                        help='backbone alone and/or the whole segmentor '
                        '(default: both; with CONFIG: segmentor)')
    parser.add_argument('--train-shape', nargs=2, type=int,
                        metavar=('H', 'W'),
                        help='training crop size (512 1024)')
    parser.add_argument('--train-batch', type=int,
                        help='crops per training step (2)')
    parser.add_argument('--arch', help='RepMLPNet variant (B256) or path of '
                        'a JSON arch dict')
    parser.add_argument('--head-channels', type=int,
                        help='UPerNet channels for every candidate (512)')
    parser.add_argument('--candidates', nargs='+', choices=CANDIDATES,
                        help='subset to run (default: all; repmlp-onnx '
                        'only when onnx and onnxruntime are installed)')
    parser.add_argument('--warmup', type=int,
                        help='untimed calls (cuda 10, cpu 1)')
    parser.add_argument('--repeats', type=int,
                        help='timed calls (cuda 50, cpu 5)')
    parser.add_argument('--channels-last', action='store_true', default=None)
    parser.add_argument('--cudnn-benchmark', action='store_true',
                        default=None)
    parser.add_argument('--compile', action='store_true', default=None,
                        help='also time every workload with the backbone '
                        'and heads torch.compile-d, next to the eager run')
    parser.add_argument('--cuda-graph', action='store_true', default=None,
                        help='also time inference replayed as CUDA graphs '
                        '(CUDA only), next to the eager run')
    parser.add_argument('--peak-tflops', type=float,
                        help='device dense bf16 peak for the %% peak column '
                        '(default by GPU name: H100/H200 989)')
    parser.add_argument('--profile', action='store_true', default=None,
                        help='print the top 15 operators/kernels of each '
                        'inference workload')
    parser.add_argument('--engines', nargs='+', metavar='ENGINE',
                        help='also time inference in these engines, side '
                        'by side: ' + ', '.join(ENGINES) + ' (OpenVINO is '
                        'optional; missing engines are skipped with a '
                        'message)')
    parser.add_argument('--ablation', action='store_true',
                        help='instead of the comparison: time the deploy '
                        'RepMLPNet with each CPU inference optimization '
                        'switched on in turn (fp32 and bf16), interleaved '
                        'in one process')
    parser.add_argument('--seed', type=int)
    parser.add_argument('--threads', type=int,
                        help='CPU intra-op threads (default: one per core)')
    parser.add_argument('--out-json', metavar='PATH',
                        help='write every number and the environment here '
                        '(updated after each candidate, "complete": true '
                        'once the run has finished)')
    parser.add_argument('--force', action='store_true',
                        help='replace an existing --out-json file')
    parser.add_argument('--small', action='store_true',
                        help='small inputs, a small RepMLPNet and a narrow '
                        'head: a few minutes on 2 CPU cores')
    return parser.parse_args(argv)


#: Options of the backbone comparison that do not apply to your own model
#: (its architecture, head and classes come from CONFIG).
COMPARISON_ONLY = ('candidates', 'arch', 'head_channels', 'small',
                   'train_shape', 'train_batch')


def _own_model_options(args: argparse.Namespace) -> dict:
    """Settings of ``tools/benchmark.py CONFIG CHECKPOINT``: whole-segmentor
    inference of what the checkpoint builds (see
    :mod:`mmseg_repmlp.benchmark.own_model`)."""
    given = [name for name in COMPARISON_ONLY if getattr(args, name)]
    if args.checkpoint is None:
        raise ValueError('Give CHECKPOINT after CONFIG.')
    if given or args.mode not in (None, 'inference') or args.scope not in (
            None, 'segmentor'):
        wrong = given + [k for k in ('mode', 'scope') if getattr(args, k)]
        raise ValueError(
            f'--{", --".join(n.replace("_", "-") for n in wrong)}: options '
            'of the backbone comparison; with CONFIG CHECKPOINT the model '
            'comes from them and is timed as whole-segmentor inference.')
    return dict(config=args.config, checkpoint=args.checkpoint,
                onnx=args.onnx, phases=('inference', ),
                scopes=('segmentor', ), candidates=())


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    mode = args.mode or 'inference'
    phases = ('inference', 'train') if mode == 'both' else (mode, )
    scopes = (('backbone', 'segmentor') if args.scope in (None, 'both') else
              (args.scope, ))
    try:
        shapes = ([parse_shape(s) for s in args.shapes] if args.shapes else
                  [tuple(args.shape)] if args.shape else None)
        own = _own_model_options(args) if args.config else dict(
            onnx=args.onnx)
        if args.config and shapes is None:
            shapes = [default_shape(args.config, args.onnx)]
        options = dict(device=args.device, shapes=shapes, batch=args.batch,
                       dtype=args.dtype,
                       phases=phases, scopes=scopes,
                       train_shape=args.train_shape,
                       train_batch=args.train_batch,
                       arch=load_arch(args.arch) if args.arch else None,
                       head_channels=args.head_channels,
                       candidates=args.candidates, warmup=args.warmup,
                       repeats=args.repeats,
                       channels_last=args.channels_last,
                       cudnn_benchmark=args.cudnn_benchmark,
                       compile=args.compile, cuda_graph=args.cuda_graph,
                       peak_tflops=args.peak_tflops, profile=args.profile,
                       seed=args.seed, threads=args.threads,
                       engines=args.engines)
        options.update(own)
        settings = resolve_settings(options, small=args.small)
        check_onnx_files(settings)
        if args.out_json:  # checked before the run, not after it
            refuse_to_overwrite(args.out_json, args.force)
    except (ValueError, KeyError, TypeError, FileExistsError) as err:
        raise SystemExit(f'benchmark: {err}') from None
    if args.ablation:
        rows = run_ablation(settings)
        print(format_ablation(rows))
        if args.out_json:
            write_json(dict(environment=environment(settings),
                            settings=settings.to_dict(), ablation=rows),
                       args.out_json)
        return
    save = ((lambda result: write_json(result, args.out_json))
            if args.out_json else None)
    result = run_benchmark(settings, on_progress=save)
    print(format_markdown(result))
    if args.out_json:
        write_json(result, args.out_json)
        print(f'\nJSON: {args.out_json}')

