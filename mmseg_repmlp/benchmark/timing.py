"""Timers, peak-memory probes and the profiler.

Nothing here touches CUDA unless the workload's device is CUDA, so every
function is safe on a machine without a GPU.

* Latency: wall-clock (``time.perf_counter``) around each call; on CUDA the
  device is synchronized before and after each call, and CUDA events give the
  GPU time of the same call.
* Peak memory is measured in a separate, untimed call so that its probes do
  not disturb the timings. CUDA: ``torch.cuda.max_memory_allocated`` (live
  tensors, weights included). CPU: the peak resident set size (RSS) above the
  RSS before the call, sampled every millisecond from ``/proc/self/statm``
  after returning freed heap to the OS (``malloc_trim``); an approximation of
  the call's working set (Linux; elsewhere the ``ru_maxrss`` growth, which
  is 0 unless the process reaches a new high-water mark). For a training
  step, also the memory saved for the backward pass (activations), counted
  exactly and the same on every device.
"""
import ctypes
import ctypes.util
import functools
import gc
import os
import resource
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import torch
from torch import Tensor

Workload = Callable[[], Any]

CUDA_MEMORY = 'cuda max_memory_allocated (weights included)'
CPU_RSS_SAMPLED = 'cpu peak RSS above the pre-call RSS, sampled every 1 ms'
CPU_MAXRSS = 'cpu ru_maxrss growth (0 unless a new process high-water mark)'
#: Why onnxruntime gets no peak memory: after warm-up its arena already holds
#: every buffer a call needs, so the RSS growth of a call reads ~0.
ORT_ARENA = ('not measured: onnxruntime reuses the memory arena its warm-up '
             'filled, so a call grows the RSS by ~0')


@dataclass
class Timing:
    """Latencies of the timed calls, in milliseconds.

    Attributes:
        wall_ms (list[float]): Wall-clock time of each call.
        gpu_ms (list[float], optional): CUDA-event time of each call.
    """
    wall_ms: List[float]
    gpu_ms: Optional[List[float]] = None

    @staticmethod
    def summary(samples: Optional[List[float]]) -> Optional[Dict[str, Any]]:
        """Median, 90th percentile (interpolated between the samples, so
        close to the max with few repeats), min, max and the samples."""
        if not samples:
            return None
        p90 = (statistics.quantiles(samples, n=10, method='inclusive')[-1]
               if len(samples) > 1 else samples[0])
        return dict(median=statistics.median(samples), p90=p90,
                    min=min(samples), max=max(samples), samples=samples)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work; nothing on the CPU."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_workload(fn: Workload, *, warmup: int, repeats: int,
                  device: torch.device) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then time ``repeats`` calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    cuda = device.type == 'cuda'
    wall, gpu = [], []
    for _ in range(repeats):
        if cuda:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            t1 = time.perf_counter()
            gpu.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            t1 = time.perf_counter()
        wall.append((t1 - t0) * 1e3)
    return Timing(wall, gpu if cuda else None)


def _rss_bytes() -> Optional[int]:
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return None


def _release_free_heap() -> None:
    # Without it, heap pages freed by earlier calls stay resident and hide
    # the memory the measured call needs from the RSS delta.
    gc.collect()
    try:
        ctypes.CDLL(ctypes.util.find_library('c')).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


class _RssSampler(threading.Thread):
    """Background thread keeping the highest RSS seen."""

    def __init__(self, interval_s: float = 1e-3) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.peak = _rss_bytes() or 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            self.peak = max(self.peak, _rss_bytes() or 0)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, _rss_bytes() or 0)
        return self.peak


def peak_memory_mb(fn: Workload, device: torch.device) -> Tuple[float, str]:
    """Peak memory of one call of ``fn`` in MiB, and how it was measured."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20, CUDA_MEMORY
    _release_free_heap()
    before = _rss_bytes()
    if before is None:
        start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fn()
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start
        return grown / 1024, CPU_MAXRSS  # ru_maxrss is in KiB on Linux
    sampler = _RssSampler()
    sampler.start()
    try:
        fn()
    finally:
        peak = sampler.stop()
    return (peak - before) / 2**20, CPU_RSS_SAMPLED


def saved_for_backward_mb(fn: Workload, exclude: Iterable[Tensor]) -> float:
    """MiB that autograd keeps for the backward pass of one call of ``fn``.

    Every tensor the forward pass saves for backward is seen through
    ``saved_tensors_hooks``; distinct storages are summed once each, and
    those of ``exclude`` (the parameters, which exist anyway) are left out.
    Unlike a memory peak this does not depend on the device, its allocator
    or the dtype of the optimizer state: it is the activation memory a
    training step needs on any device, for the dtypes the step runs in.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    saved: Dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in skip:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(saved.values()) / 2**20


def profile_table(fn: Workload, device: torch.device, steps: int = 3,
                  row_limit: int = 15) -> str:
    """Top operators (CUDA kernels on a GPU) of ``steps`` calls of ``fn``."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    sort_by = 'self_cpu_time_total'
    if device.type == 'cuda':
        activities.append(torch.profiler.ProfilerActivity.CUDA)
        sort_by = 'self_device_time_total'
    fn()  # not profiled: first-call allocations and lazy initialization
    synchronize(device)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(steps):
            fn()
        synchronize(device)
    return prof.key_averages().table(sort_by=sort_by, row_limit=row_limit)


def gemm_roofline_gflops(size: int = 2048, repeats: int = 5
                         ) -> Dict[str, float]:
    """Measured CPU peak: GFLOP/s of the best of ``repeats`` square
    ``size`` GEMMs (``torch.mm``, PyTorch's threads), in fp32 and, where
    the CPU has native bf16 kernels, bf16. A roofline for dense layers
    that engines reach at best, not the flags x cores x clock figure."""
    from ..apis.fast_inference import native_cpu_dtype
    out = {}
    dtypes = {'fp32': torch.float32}
    if native_cpu_dtype(torch.bfloat16):
        dtypes['bf16'] = torch.bfloat16
    gen = torch.Generator().manual_seed(0)
    for name, dtype in dtypes.items():
        a = torch.randn(size, size, generator=gen).to(dtype)
        b = torch.randn(size, size, generator=gen).to(dtype)
        torch.mm(a, b)
        best = min(_seconds(functools.partial(torch.mm, a, b))
                   for _ in range(repeats))
        out[name] = 2 * size**3 / best / 1e9
    return out


def _seconds(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
