"""Run every candidate through every workload with the same settings.

For each candidate, in order: build it; count parameters and MACs and (for
``repmlp-deploy``) compare its outputs with the training structure, all in
eager FP32 before anything is compiled; time each workload eagerly, then,
with ``--compile``/``--cuda-graph``, again on the fast path users get
(:func:`~mmseg_repmlp.apis.accelerate`), so that eager and fast
figures come from the same run; inference first, training last, since a
training step changes the weights. Each timing is followed by one untimed
call that measures peak memory, and optionally a profile. The candidate is
freed before the next is built, so only one model occupies the device at a
time.

``repmlp-onnx`` is exported once per input size, in the analysis step (its
agreement check needs the graph): the timed call is then ``session.run``.
A candidate with nothing to run (see :func:`skip_reason`) is not built.

With ``settings.config`` the candidates are the user's own model and its
ONNX files (:mod:`.own_model`) instead of the built-in ones; everything
else is the same.
"""
import functools
import gc
import os
import sys
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional

import torch

from ..apis.fast_inference import accelerate, is_accelerated
from ..export.check import torch_reference
from ..export.runtime import ort_session, run_onnx
from ..utils.compare import max_relative_difference
from .candidates import (
    NUM_CLASSES,
    Candidate,
    CandidateSpec,
    candidate_spec,
    onnx_session,
)
from .complexity import (
    count_macs,
    count_params,
    tensors,
    worst_relative_difference,
)
from .engines import ENGINES, Engine
from .engines import workdir as engine_workdir
from .own_model import own_specs
from .report import add_ratios, environment, notes
from .settings import EAGER, FAST, BenchmarkSettings, Shape, onnx_available
from .timing import (
    ORT_ARENA,
    Timing,
    gemm_roofline_gflops,
    peak_memory_mb,
    profile_table,
    saved_for_backward_mb,
    time_workload,
)
from .workloads import (
    CountedForward,
    forward_fn,
    image_metas,
    inference_workload,
    make_input,
    make_pixels,
    onnx_workload,
    train_workload,
    used_modules,
)

Log = Callable[[str], None]

#: A training step is about three forwards (forward, and a backward pass
#: costing about twice as much); used for achieved TFLOP/s of training.
TRAIN_FLOPS_PER_FORWARD = 3


@dataclass(frozen=True)
class Plan:
    """One workload of a candidate, on the eager or the fast path."""
    phase: str
    scope: str
    shape: Shape
    batch: int
    path: str = EAGER

    @property
    def eager_twin(self) -> 'Plan':
        return replace(self, path=EAGER)


def plans(settings: BenchmarkSettings) -> List[Plan]:
    """Workloads in run order: inference for every shape, eager then (with
    --compile or --cuda-graph) fast; then training, eager then (with
    --compile) compiled. Each fast plan repeats an eager one, so both are
    timed side by side in the same run."""
    inference = [Plan('inference', scope, shape, settings.batch)
                 for shape in settings.shapes for scope in settings.scopes
                 ] if 'inference' in settings.phases else []
    train = [Plan('train', scope, settings.train_shape, settings.train_batch)
             for scope in settings.scopes
             ] if 'train' in settings.phases else []
    out = list(inference)
    if settings.fast_path:
        out += [replace(p, path=FAST) for p in inference]
    out += [replace(p, path=engine) for engine in settings.engines
            for p in inference]
    out += train
    if settings.compile:
        out += [replace(p, path=FAST) for p in train]
    return out


_START = time.perf_counter()


def _stderr(message: str) -> None:
    print(f'{message} (+{time.perf_counter() - _START:.0f} s)',
          file=sys.stderr, flush=True)


def run_benchmark(settings: BenchmarkSettings,
                  log: Log = _stderr,
                  on_progress: Optional[Callable[[Dict[str, Any]], None]] = None
                  ) -> Dict[str, Any]:
    """Measure ``settings.candidates``; return the JSON-ready result.

    Args:
        settings (BenchmarkSettings): What to run (already validated).
        log (callable): Receives one progress line at a time. Default:
            print to stderr.
        on_progress (callable, optional): Called with the result so far
            (``complete`` False) after each candidate, e.g. to save it, so
            that a run stopped by a time limit keeps what it measured.

    Returns:
        dict: ``environment``, ``settings``, ``notes``, ``records`` (one
        per candidate and workload, with ``ratio_to`` each baseline),
        ``elapsed_s`` (the whole run, building and counting included) and
        ``complete`` (True).
    """
    start = time.perf_counter()
    if settings.is_cuda:
        torch.backends.cudnn.benchmark = settings.cudnn_benchmark
    if settings.threads:
        torch.set_num_threads(settings.threads)
    _warn_if_busy(log)
    if (settings.engines and not settings.is_cuda
            and settings.cpu_peak_gflops is None):
        log('[benchmark] measuring the CPU\'s large-GEMM roofline')
        settings = replace(settings, cpu_peak_gflops=gemm_roofline_gflops())
    result = dict(environment=environment(settings),
                  settings=settings.to_dict(), notes=notes(settings),
                  records=[])
    for spec in candidate_specs(settings):
        name = spec.name
        skipped = [_new_record(spec, plan, settings)
                   for plan in plans(settings)]
        if all(record['skipped'] for record in skipped):
            # E.g. repmlp-onnx for --mode train: the records say why.
            log(f'[benchmark] {name}: nothing to run ('
                f'{"; ".join(sorted({r["skipped"] for r in skipped}))})')
            result['records'] += skipped
            continue
        onnx = (', exporting ONNX' if spec.structure == 'onnx'
                and not settings.own_model else '')
        log(f'[benchmark] {name}: building, counting MACs{onnx}')
        candidate = spec.build()
        result['records'] += measure_candidate(candidate, settings, log, spec)
        del candidate
        gc.collect()
        if settings.is_cuda:
            torch.cuda.empty_cache()
        if on_progress is not None:
            add_ratios(result['records'])
            on_progress(dict(result, complete=False,
                             elapsed_s=time.perf_counter() - start))
    add_ratios(result['records'])
    result['elapsed_s'] = time.perf_counter() - start
    result['complete'] = True
    return result


def candidate_specs(settings: BenchmarkSettings) -> List[CandidateSpec]:
    """What a run builds and measures, in report order: the user's own
    model (:func:`.own_model.own_specs`) or the built-in candidates."""
    if settings.own_model:
        return own_specs(settings)
    return [candidate_spec(name, settings) for name in settings.candidates]


def _warn_if_busy(log: Log) -> None:
    # With the cores already busy, PyTorch's OpenMP threads wait on each
    # other at every operator: small CPU ops can become 10-100x slower.
    if not hasattr(os, 'getloadavg'):
        return
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cores:
        log(f'[benchmark] warning: load average {load:.1f} on {cores} cores '
            'before starting: other processes compete for the CPU and the '
            'timings will be noisy (on a shared CPU, --threads 1 is often '
            'both faster and steadier).')


class CaptureError(RuntimeError):
    """A workload could not be captured as a CUDA graph."""


def measure_candidate(candidate: Candidate, settings: BenchmarkSettings,
                      log: Log = _stderr,
                      spec: Optional[CandidateSpec] = None
                      ) -> List[Dict[str, Any]]:
    """All workloads of one candidate; see the module docstring. ``spec``:
    its spec, when not a built-in candidate's."""
    if spec is None:
        spec = candidate_spec(candidate.name, settings)
    todo = [(plan, _new_record(spec, plan, settings))
            for plan in plans(settings)]
    eager = {plan: record for plan, record in todo if plan.path == EAGER}
    for plan, record in eager.items():
        if not record['skipped']:
            _guarded(_analyse, candidate, plan, settings, record, log)
    for plan, record in todo:
        if plan.path != EAGER:  # same model, same input: the same analysis
            twin = eager[plan.eager_twin]
            record.update({k: twin[k] for k in _ANALYSIS})
    candidate.reference = None  # only the agreement check needed it
    files = engine_workdir() if settings.engines else None
    for plan, record in todo:
        if record['skipped'] or record['error']:
            continue
        # repmlp-onnx runs its exported graph, never the PyTorch modules.
        if (plan.path == FAST and plan.phase == 'inference'
                and not is_accelerated(candidate.model)):
            accelerate(candidate.model, **settings.fast_options)
        log(f'[benchmark] {candidate.name}: {plan.phase} {plan.scope} '
            f'{plan.batch}x3x{plan.shape[0]}x{plan.shape[1]} {plan.path}')
        _guarded(functools.partial(_measure, workdir=files and files.name),
                 candidate, plan, settings, record, log)
    if files is not None:
        files.cleanup()
    for plan, record in todo:
        twin = eager.get(plan.eager_twin)
        if (plan.path != EAGER and record['latency_ms']
                and twin['latency_ms']):
            record['ratio_to_eager'] = (record['latency_ms']['median'] /
                                        twin['latency_ms']['median'])
    return [record for _, record in todo]


#: Record fields filled by :func:`_analyse`, shared by a plan's two paths.
_ANALYSIS = ('params', 'macs', 'deploy_vs_train_max_rel_diff', 'error')


def _guarded(step: Callable, candidate: Candidate, plan: Plan,
             settings: BenchmarkSettings, record: Dict[str, Any],
             log: Log) -> None:
    """Run ``step``; an out-of-memory or capture failure becomes the
    record's error, so one workload that does not fit hides no other
    numbers."""
    try:
        step(candidate, plan, settings, record)
    except (torch.OutOfMemoryError, CaptureError) as err:
        kind = ('out of memory' if isinstance(err, torch.OutOfMemoryError)
                else 'CUDA graph capture failed')
        record['error'] = f'{kind}: {str(err).splitlines()[0]}'
        log(f'[benchmark] {candidate.name} {plan.phase} {plan.scope}: '
            f'{record["error"]}')
    finally:
        gc.collect()
        if settings.is_cuda:
            torch.cuda.empty_cache()


def skip_reason(structure: str, plan: Plan,
                settings: BenchmarkSettings) -> Optional[str]:
    """Why a candidate of ``structure`` (see
    :func:`~.candidates.structure_of`) does not run ``plan``; None when it
    does."""
    if plan.phase == 'train' and structure == 'deploy':
        # Training always runs the train structure (repmlp-train).
        return 'skipped: the deploy structure is inference-only'
    if plan.path in ENGINES:
        return _engine_skip_reason(ENGINES[plan.path], structure, settings)
    if structure != 'onnx':
        return None
    if plan.phase == 'train':
        return 'skipped: the ONNX graph is inference-only'
    if plan.scope == 'backbone':
        return ('skipped: the ONNX graph is the whole segmentor (raw pixels '
                'to logits)')
    if settings.dtype != 'fp32':
        return (f'skipped: the ONNX graph is exported in fp32; --dtype '
                f'{settings.dtype} has no onnxruntime counterpart here')
    if settings.is_cuda:
        return ('skipped: onnxruntime runs on the CPU; compare it with '
                '--device cpu')
    if not onnx_available():
        return ('skipped: onnx and onnxruntime are not installed (pip '
                'install onnx onnxruntime)')
    if plan.path == FAST:
        return ('skipped: --compile and --cuda-graph apply to PyTorch; the '
                'ONNX graph runs in onnxruntime as exported')
    return None


def _engine_skip_reason(engine: Engine, structure: str,
                        settings: BenchmarkSettings) -> Optional[str]:
    if structure == 'onnx':
        return ('skipped: this candidate is an onnxruntime graph already; '
                'engines take the PyTorch candidates')
    if settings.is_cuda:
        return ('skipped: --engines compare CPU engines; use --device cpu')
    return engine.unavailable()


def _new_record(spec: CandidateSpec, plan: Plan,
                settings: BenchmarkSettings) -> Dict[str, Any]:
    """Empty record of a plan (``skipped`` set where it does not apply)."""
    record: Dict[str, Any] = dict(
        candidate=spec.name, backbone=spec.backbone,
        structure=spec.structure, baseline=spec.baseline,
        phase=plan.phase, scope=plan.scope, path=plan.path,
        input_shape=[plan.batch, 3, *plan.shape],
        dtype=(ENGINES[plan.path].precision if plan.path in ENGINES else
               settings.dtype),
        params=None, macs=None, latency_ms=None, gpu_ms=None,
        images_per_s=None, peak_mem_mb=None, peak_mem_method=None,
        saved_mb=None,
        tflops=None, peak_fraction=None, ratio_to={}, ratio_to_eager=None,
        deploy_vs_train_max_rel_diff=None, fast_vs_eager_max_rel_diff=None,
        profile=None,
        skipped=skip_reason(spec.structure, plan, settings), error=None)
    return record


def _analyse(candidate: Candidate, plan: Plan, settings: BenchmarkSettings,
             record: Dict[str, Any]) -> None:
    """Fill what needs no timing: parameters, MACs, deploy agreement."""
    model = candidate.model
    model.eval()
    x = make_input(plan.batch, plan.shape, settings)
    record['params'] = count_params(used_modules(model, plan.scope,
                                                 plan.phase))
    record['macs'] = count_macs(
        CountedForward(model, plan.scope, plan.phase, plan.shape, plan.batch),
        x)
    if candidate.structure == 'onnx':
        # Exported here, at this plan's size, as the check needs the graph;
        # _measure times the same session. The graph normalizes raw pixels
        # itself, so the simplest like-for-like reference is MMSegmentation's
        # own path on the same pixels: the train structure's data
        # preprocessor, then encode_decode (torch_reference; CPU, FP32).
        # A given file (the user's own export) is compared with the
        # training form where the checkpoint has one, else the deploy form.
        session = (ort_session(candidate.onnx_file, _onnx_threads())
                   if candidate.onnx_file else
                   onnx_session(candidate.model, plan.shape, plan.batch,
                                _onnx_threads()))
        candidate.sessions[(plan.shape, plan.batch)] = session
        pixels = make_pixels(plan.batch, plan.shape, settings)
        reference = (candidate.model if candidate.reference is None else
                     candidate.reference)
        ref, _ = torch_reference(reference, pixels)
        out = run_onnx(session, pixels)
        if out.shape == ref.shape:  # not for a graph that outputs labels
            record['deploy_vs_train_max_rel_diff'] = max_relative_difference(
                out, ref)
    elif candidate.reference is not None and plan.phase == 'inference':
        # FP32 eager on both sides: this checks the conversion, not the
        # precision of --dtype.
        metas = image_metas(plan.batch, plan.shape)
        with torch.no_grad():
            ref = forward_fn(candidate.reference, plan.scope, metas)(x)
            out = forward_fn(model, plan.scope, metas)(x)
        record['deploy_vs_train_max_rel_diff'] = worst_relative_difference(
            ref, out)


def _onnx_threads() -> int:
    """onnxruntime's intra-op threads: as many as PyTorch uses (--threads,
    else PyTorch's default), so both runtimes get the same cores."""
    return torch.get_num_threads()


def _measure(candidate: Candidate, plan: Plan, settings: BenchmarkSettings,
             record: Dict[str, Any], workdir: Optional[str] = None) -> None:
    """Time one plan and fill ``record`` in place."""
    # Dynamo keeps at most 8 graphs per function and runs it eagerly past
    # that; the compiled workloads of one run share functions (the fast
    # path's wrappers), so each starts from no compiled code.
    torch._dynamo.reset()
    device = settings.torch_device
    x = make_input(plan.batch, plan.shape, settings)
    if plan.path in ENGINES:
        _measure_engine(candidate, plan, settings, record, x, workdir)
        return
    if candidate.structure == 'onnx':
        # The session _analyse exported; freed with the workload.
        fn = onnx_workload(candidate.sessions.pop((plan.shape, plan.batch)),
                           make_pixels(plan.batch, plan.shape, settings))
    elif plan.phase == 'inference':
        fn = inference_workload(candidate.model, plan.scope, x, settings,
                                fast=plan.path == FAST)
    else:
        fn = train_workload(candidate.model, plan.scope, x, settings,
                            NUM_CLASSES, fast=plan.path == FAST)
    try:
        # CUDA graphs are captured in the first (warm-up) call.
        timing = time_workload(fn, warmup=settings.warmup,
                               repeats=settings.repeats, device=device)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:
        if not (settings.cuda_graph and plan.path == FAST):
            raise
        raise CaptureError(f'{err}; the eager timing of this workload, '
                           'in the same run, still stands') from err
    if candidate.structure == 'onnx':
        record['peak_mem_method'] = ORT_ARENA  # no number rather than ~0
    else:
        record['peak_mem_mb'], record['peak_mem_method'] = peak_memory_mb(
            fn, device)
    if plan.phase == 'train' and plan.path == EAGER:  # compiled: the same
        record['saved_mb'] = saved_for_backward_mb(
            fn, candidate.model.parameters())
    # PyTorch's profiler sees nothing inside onnxruntime.
    if (settings.profile and plan.phase == 'inference'
            and candidate.structure != 'onnx'):
        record['profile'] = profile_table(fn, device)
    if ((settings.fast_path or settings.engines)
            and plan.phase == 'inference' and candidate.structure != 'onnx'):
        _compare_fast_with_eager(candidate, plan, fn, record)
    _fill_rates(record, timing, plan, settings)


def _measure_engine(candidate: Candidate, plan: Plan,
                    settings: BenchmarkSettings, record: Dict[str, Any],
                    x: torch.Tensor, workdir: Optional[str]) -> None:
    """Time one plan in an engine of :data:`.engines.ENGINES`."""
    engine = ENGINES[plan.path]
    prepared = engine.prepare(candidate.model.eval(), plan.scope, x,
                              torch.get_num_threads(), workdir)
    try:
        timing = time_workload(prepared.run, warmup=settings.warmup,
                               repeats=settings.repeats,
                               device=settings.torch_device)
        if engine.runtime == 'torch':
            record['peak_mem_mb'], record['peak_mem_method'] = \
                peak_memory_mb(prepared.run, settings.torch_device)
        if settings.profile:
            record['profile'] = (prepared.profile() if prepared.profile
                                 else profile_table(prepared.run,
                                                    settings.torch_device)
                                 if engine.runtime == 'torch' else None)
        _compare_fast_with_eager(candidate, plan, prepared.run, record)
        _fill_rates(record, timing, plan, settings)
    finally:
        if prepared.close is not None:
            prepared.close()


def _compare_fast_with_eager(candidate: Candidate, plan: Plan, fn: Callable,
                             record: Dict[str, Any]) -> None:
    """Keep an eager plan's outputs; compare its fast twin's with them,
    so every run shows what the fast path changes (float rounding, or the
    precision of --dtype on both)."""
    outputs = [t.detach().float().cpu() for t in tensors(fn())]
    if plan.path == EAGER:
        candidate.eager_outputs[plan] = outputs
        return
    eager = candidate.eager_outputs.get(plan.eager_twin)
    if eager is not None:
        record['fast_vs_eager_max_rel_diff'] = worst_relative_difference(
            eager, outputs)


def _fill_rates(record: Dict[str, Any], timing: Timing, plan: Plan,
                settings: BenchmarkSettings) -> None:
    record['latency_ms'] = Timing.summary(timing.wall_ms)
    record['gpu_ms'] = Timing.summary(timing.gpu_ms)
    wall_s = record['latency_ms']['median'] / 1e3
    record['images_per_s'] = plan.batch / wall_s
    # Device time when there is one: TFLOP/s describe the GPU's work, not
    # the launch and synchronization overhead around it.
    busy_s = (record['gpu_ms']['median'] / 1e3
              if record['gpu_ms'] else wall_s)
    flops = 2 * record['macs'] * (TRAIN_FLOPS_PER_FORWARD
                                  if plan.phase == 'train' else 1)
    record['tflops'] = flops / busy_s / 1e12
    peak: Optional[float] = settings.peak_tflops
    if settings.is_cuda and peak:
        record['peak_fraction'] = record['tflops'] / peak
    cpu_peak = (settings.cpu_peak_gflops or {}).get(record['dtype'])
    if not settings.is_cuda and cpu_peak:
        record['peak_fraction'] = record['tflops'] * 1e3 / cpu_peak
