"""Images per second of ``segment.py`` (onnxruntime) next to the toolkit's
``mmseg_repmlp.apis.inference_model`` (PyTorch), in one run, on one image.

    python examples/onnxruntime/throughput.py CONFIG CHECKPOINT MODEL.onnx \
        [--size 256 512] [--image IMG] [--runs 20] [--threads N]

Both take the same BGR uint8 image and return labels at its size (each with
its own resize, normalization and logits resize); the runs alternate, so
that load from other processes hits both alike. Unlike ``segment.py`` this
script imports the toolkit: it is the comparison, not the deployment.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segment import Segmenter, read_bgr  # noqa: E402

from mmseg_repmlp.apis import inference_model, init_model  # noqa: E402


def cpu_flags() -> str:
    """The CPU's vector extensions that matter for inference speed."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = set(f.read().split())
    except OSError:
        return 'unknown'
    wanted = ('avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_bf16')
    return ' '.join(f for f in wanted if f in flags) or 'none of avx2/avx512'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('model', help='.onnx file from tools/export_onnx.py')
    parser.add_argument('--size', type=int, nargs=2, default=(256, 512),
                        metavar=('H', 'W'), help='image size (default: 256 '
                        '512)')
    parser.add_argument('--image', help='image, resized to --size (default: '
                        'random pixels)')
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--threads', type=int,
                        help='threads of both runtimes (default: '
                        "PyTorch's default)")
    args = parser.parse_args()
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    h, w = args.size
    if args.image:
        import cv2
        image = cv2.resize(read_bgr(args.image), (w, h),
                           interpolation=cv2.INTER_LINEAR)
    else:
        image = np.random.default_rng(0).integers(0, 256, (h, w, 3),
                                                  dtype=np.uint8)
    model = init_model(args.config, args.checkpoint, device='cpu')
    segmenter = Segmenter(args.model, threads)
    runners = {
        'onnxruntime (segment.py)': segmenter.labels,
        'inference_model (PyTorch)':
        lambda img: inference_model(model, img).pred_sem_seg.data[0].numpy(),
    }
    times = {name: [] for name in runners}
    labels = {}
    for name, run in runners.items():  # warm-up
        labels[name] = run(image)
    for _ in range(args.runs):
        for name, run in runners.items():
            start = time.perf_counter()
            run(image)
            times[name].append(time.perf_counter() - start)
    a, b = labels.values()
    print(f'{h}x{w} image, {args.runs} runs each, {threads} threads, CPU '
          f'flags: {cpu_flags()}')
    for name, secs in times.items():
        median = statistics.median(secs)
        print(f'  {name:28s} {1 / median:7.2f} images/s (median '
              f'{1000 * median:.1f} ms, min {1000 * min(secs):.1f} ms)')
    print(f'  label agreement: {100 * (a == b).mean():.4f} % of pixels')


if __name__ == '__main__':
    main()
