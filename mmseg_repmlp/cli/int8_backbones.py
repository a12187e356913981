"""``tools/analysis/int8_backbones.py``: INT8 error and OpenVINO latency of
deploy RepMLPNet against ResNet, backbones alone.

    python tools/analysis/int8_backbones.py [--arch B256] [--size 512 1024] \
        [--calib-images 16] [--check-images 4] [--bn-images 4] [--threads 2]

Both backbones get random weights and realistic BatchNorm statistics (a few
forward passes in train mode on generated street scenes), RepMLPNet is
re-parameterized (deploy), both are exported to ONNX and converted to
OpenVINO. Each quantization recipe is calibrated on the same images; the
error of every stage output (INT8 against fp32, in f32 inference, relative
to the stage's largest fp32 value) is measured on held-out images. Then
fp32, bf16 and INT8 (the recipe) are timed: batch 1, ``--threads`` threads,
latency hint, median of ``--repeats`` runs, the candidates interleaved. If
RepMLPNet's INT8 is slower than ResNet's, OpenVINO's per-layer performance
counters say where its time goes.
"""
import argparse
import copy
import os
import tempfile
import time
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..deploy import reparameterize_model
from ..export.exportable import make_exportable
from ..export.ir import compile_ir, onnx_to_ir, perf_count_table
from ..export.onnx import trace_to_onnx
from ..export.quantize import int8_ignored_names, quantize_int8, stage_errors
from ..synthetic.sample import make_sample, sample_rng

#: ImageNet mean and std (RGB), as the configs normalize.
MEAN = np.array([123.675, 116.28, 103.53], np.float32).reshape(1, 3, 1, 1)
STD = np.array([58.395, 57.12, 57.375], np.float32).reshape(1, 3, 1, 1)

#: Quantization recipes: name -> (unfold the Local Perceptron, NNCF model
#: type, SmoothQuant conv alpha, bias correction, RepMLPNet ops in float).
RECIPES = {
    'nncf-defaults': (False, 'cnn', -1, True, False),
    'transformer, folded fc3': (False, 'transformer', 0.15, False, True),
    'recipe, all int8': (True, 'transformer', 0.15, False, False),
    'recipe': (True, 'transformer', 0.15, False, True),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[-1])
    parser.add_argument('--arch', default='B256', help='RepMLPNet variant')
    parser.add_argument('--resnet-depth', type=int, default=101)
    parser.add_argument('--size', type=int, nargs=2, default=(512, 1024),
                        metavar=('H', 'W'))
    parser.add_argument('--bn-images', type=int, default=4,
                        help='images that set the BatchNorm statistics')
    parser.add_argument('--calib-images', type=int, default=16)
    parser.add_argument('--check-images', type=int, default=4)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--recipes', nargs='+', choices=list(RECIPES),
                        default=list(RECIPES))
    parser.add_argument('--no-latency', action='store_true')
    return parser.parse_args(argv)


def street_images(count: int, size: Sequence[int], seed: int
                  ) -> List[np.ndarray]:
    """``count`` generated street scenes as normalized ``(1, 3, H, W)``
    float32 batches."""
    images = []
    for i in range(count):
        rgb = make_sample(sample_rng(seed, 0, i), *size).image
        batch = rgb.transpose(2, 0, 1)[None].astype(np.float32)
        images.append(np.ascontiguousarray((batch - MEAN) / STD))
    return images


@torch.no_grad()
def set_norm_stats(model: nn.Module, images: Sequence[np.ndarray]) -> None:
    """BatchNorm statistics as the average over ``images`` (train mode)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average
    model.train()
    for image in images:
        model(torch.from_numpy(image))
    model.eval()


class _Stages(nn.Module):
    """A backbone returning its stage outputs as a tuple."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return tuple(self.backbone(x))


def backbone_ir(backbone: nn.Module, size: Sequence[int], unfold: bool):
    """fp32 ``openvino.Model`` of ``backbone`` (fixed ``(1, 3, H, W)``)."""
    backbone = copy.deepcopy(backbone)
    backbone.eval()  # mmseg's ResNet.train returns None
    if unfold:
        backbone = make_exportable(backbone, unfold_local_perceptron=True)
    model = _Stages(backbone)
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'backbone.onnx')
        trace_to_onnx(model, torch.zeros(1, 3, *size), path, ['image'])
        return onnx_to_ir(path, {}, 'fp32')


def run_all(compiled, images: Sequence[np.ndarray]) -> List[List[np.ndarray]]:
    request = compiled.create_infer_request()
    results = []
    for image in images:
        request.infer({0: image})
        results.append([request.get_output_tensor(i).data.copy()
                        for i in range(len(compiled.outputs))])
    return results


def latencies(candidates: Dict[str, object], image: np.ndarray,
              repeats: int) -> Dict[str, float]:
    """Median seconds of one inference of each compiled model, the
    candidates interleaved in each round."""
    requests = {name: c.create_infer_request()
                for name, c in candidates.items()}
    for request in requests.values():
        request.infer({0: image})  # warm-up
    times = defaultdict(list)
    for _ in range(repeats):
        for name, request in requests.items():
            start = time.perf_counter()
            request.infer({0: image})
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def profile(compiled, image: np.ndarray, top: int = 12) -> str:
    """Where the time of one inference goes (``PERF_COUNT``): by layer type
    and execution kernel, and the slowest layers."""
    request = compiled.create_infer_request()
    request.infer({0: image})
    request.infer({0: image})
    infos = request.get_profiling_info()
    lines = [perf_count_table(infos, top), '  slowest layers:']
    for info in sorted(infos, key=lambda i: -i.real_time.total_seconds()
                       )[:top]:
        lines.append(f'  {info.node_name[-60:]:<62}{info.exec_type:<28}'
                     f'{1000 * info.real_time.total_seconds():8.1f} ms')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from mmseg.models.backbones import ResNetV1c

    from ..models.backbones.repmlpnet import RepMLPNet
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size = tuple(args.size)
    print(f'Images: {args.bn_images} for BatchNorm statistics, '
          f'{args.calib_images} calibration, {args.check_images} held out; '
          f'{size[0]}x{size[1]} generated street scenes')
    bn_images = street_images(args.bn_images, size, seed=100)
    calibration = street_images(args.calib_images, size, seed=200)
    held_out = street_images(args.check_images, size, seed=300)
    repmlp = RepMLPNet(arch=args.arch)
    # PyTorch's default initialisation for both (init_weights would zero
    # the last BN of every ResNet block: identity blocks).
    resnet = ResNetV1c(depth=args.resnet_depth)
    for model in (repmlp, resnet):
        set_norm_stats(model, bn_images)
    deploy = reparameterize_model(repmlp)
    names = [f'RepMLPNet-{args.arch} deploy', f'ResNetV1c-{args.resnet_depth}']
    fp32 = {
        (names[0], False): backbone_ir(deploy, size, unfold=False),
        (names[0], True): backbone_ir(deploy, size, unfold=True),
        (names[1], False): backbone_ir(resnet, size, unfold=False),
    }
    reference = {name: run_all(compile_ir(fp32[(name, False)], args.threads),
                               held_out) for name in names}
    print('\nINT8 error per stage output (max |int8 - fp32| / max |fp32| '
          'of the stage, over the held-out images; f32 inference)')
    int8 = {}
    for recipe in args.recipes:
        unfold, model_type, alpha, bias_corr, use_ignored = RECIPES[recipe]
        for name in names:
            is_repmlp = name == names[0]
            if not is_repmlp and unfold:
                continue  # the same as 'transformer, folded fc3' for ResNet
            base = fp32[(name, unfold and is_repmlp)]
            ignored = (int8_ignored_names(base) if use_ignored and
                       is_repmlp else [])
            start = time.perf_counter()
            quantized = quantize_int8(base, calibration, ignored, alpha,
                                      model_type, bias_corr)
            seconds = time.perf_counter() - start
            actual = run_all(compile_ir(quantized, args.threads,
                                        inference_precision='f32'), held_out)
            rows = stage_errors(reference[name], actual,
                                list(range(len(actual[0]))))
            means = ' '.join(f'{100 * r["mean_error"]:.3f}%' for r in rows)
            print(f'{name:<24}{recipe:<26}' + ' '.join(
                f'{100 * r["max_error"]:6.2f}%' for r in rows) +
                f'   (mean {means}; {len(ignored)} ops float; quantized '
                f'in {seconds:.0f} s)', flush=True)
            # Timed: RepMLPNet's full recipe; ResNet with the same NNCF
            # settings (nothing of it to unfold or keep in float).
            if (recipe == 'recipe' and is_repmlp) or (
                    recipe == 'transformer, folded fc3' and not is_repmlp):
                int8[name] = (recipe, quantized)
            else:
                int8.setdefault(name, (recipe, quantized))
    if args.no_latency:
        return
    candidates = {}
    for name in names:
        candidates[f'{name} fp32'] = compile_ir(
            fp32[(name, False)], args.threads, 'f32')
        candidates[f'{name} bf16'] = compile_ir(
            fp32[(name, False)], args.threads, 'bf16')
        if name in int8:
            recipe, quantized = int8[name]
            print(f'{name} int8: recipe {recipe!r}')
            candidates[f'{name} int8'] = compile_ir(
                quantized, args.threads, 'f32')
    times = latencies(candidates, held_out[0], args.repeats)
    print(f'\nOpenVINO latency, batch 1 at {size[0]}x{size[1]}, '
          f'{args.threads} threads, LATENCY hint, median of {args.repeats} '
          '(interleaved)')
    for name, seconds in times.items():
        print(f'  {name:<36}{1000 * seconds:9.1f} ms')
    repmlp_int8 = times.get(f'{names[0]} int8')
    resnet_int8 = times.get(f'{names[1]} int8')
    if repmlp_int8 and resnet_int8 and repmlp_int8 > resnet_int8:
        for name in names:
            print(f'\nPERF_COUNT of {name} int8:')
            print(profile(compile_ir(int8[name][1], args.threads, 'f32',
                                     perf_count=True), held_out[0]))
