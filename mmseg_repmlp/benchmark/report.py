"""The environment, latency ratios, the markdown table and the JSON file."""
import datetime
import json
import os
import platform
import shlex
import sys
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..apis.fast_inference import cpu_flags
from ..export.onnx import DEFAULT_OPSET
from ..utils.fileio import atomic_write
from .engines import ENGINES, openvino_version
from .settings import (
    OWN_DEPLOY,
    REPMLP_DEPLOY,
    REPMLP_ONNX,
    BenchmarkSettings,
)
from .timing import CPU_RSS_SAMPLED, CUDA_MEMORY

Record = Dict[str, Any]

#: CPU features that decide which kernels PyTorch and onnxruntime can use
#: (AVX-512 and VNNI for int8, BF16/FP16 and AMX for reduced precision);
#: a trailing ``*`` matches a family.
CPU_FEATURES = ('avx2', 'avx512f', 'avx512_bf16', 'avx512_fp16',
                'avx512_vnni', 'avx_vnni', 'amx_*')


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_features() -> Optional[List[str]]:
    """Which of :data:`CPU_FEATURES` this CPU has (None where the flags are
    unknown, e.g. not x86 Linux)."""
    flags = cpu_flags()
    if flags is None:
        return None
    return [flag for flag in sorted(flags) if any(
        flag.startswith(f[:-1]) if f.endswith('*') else flag == f
        for f in CPU_FEATURES)]


def _onnxruntime_version() -> Optional[str]:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def environment(settings: BenchmarkSettings) -> Dict[str, Any]:
    """Versions, device, CPU and load, date and command line of this run."""
    import mmcv
    import mmengine
    import mmseg

    from .. import __version__
    env: Dict[str, Any] = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        command=shlex.join([sys.executable, *sys.argv]),
        python=platform.python_version(),
        platform=platform.platform(),
        torch=torch.__version__, mmcv=mmcv.__version__,
        mmengine=mmengine.__version__, mmseg=mmseg.__version__,
        mmseg_repmlp=__version__,
        onnxruntime=_onnxruntime_version(),
        openvino=openvino_version(),
        cpu=_cpu_name(), cpu_features=cpu_features(),
        cpu_count=os.cpu_count(),
        cpu_affinity=(len(os.sched_getaffinity(0))
                      if hasattr(os, 'sched_getaffinity') else None),
        torch_threads=torch.get_num_threads(),
        # Other processes competing for the cores make CPU timings noisy.
        load_average=list(os.getloadavg()) if hasattr(os, 'getloadavg')
        else None,
        device=settings.device, device_name=_cpu_name(),
        cpu_peak_gflops=settings.cpu_peak_gflops)
    if settings.is_cuda:
        props = torch.cuda.get_device_properties(settings.torch_device)
        env.update(
            device_name=props.name,
            device_memory_gib=props.total_memory / 2**30,
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
            peak_tflops=settings.peak_tflops)
    return env


def notes(settings: BenchmarkSettings) -> List[str]:
    """How each number is measured, for the report and the JSON."""
    latency = (
        'latency: wall-clock per call after warm-up (median/p90/min/max over '
        'repeats; p90 interpolated between them, near the max with few '
        'repeats)' + ('; the GPU is synchronized around each call and CUDA '
                      'events give the GPU ms' if settings.is_cuda else ''))
    macs = ('MACs: mmengine FlopAnalyzer on the actual input (it counts '
            'multiply-adds); TFLOP/s = 2 * MACs / time ' +
            ('(GPU time)' if settings.is_cuda else '(wall time)') +
            ', x3 for a training step (forward + backward, approximate)')
    memory = ('peak memory: ' + (CUDA_MEMORY if settings.is_cuda else
                                 CPU_RSS_SAMPLED +
                                 ' (approximate working set)') +
              ', in one extra untimed call')
    if settings.own_model:
        out = [latency, *_own_model_notes(settings), macs, memory]
    else:
        out = [
            latency,
            'segmentor = encode_decode (backbone, UPerNet, logits resized to '
            'the input; no data preprocessor); backbone = backbone alone',
            'train = one SGD step: segmentor on random labels with decode '
            'and auxiliary heads, backbone on the mean of its features',
            macs, memory,
            'saved MB (training): activations autograd keeps for the '
            'backward pass, each distinct storage once, parameters '
            'excluded; exact and device-independent (one more untimed step)',
            'lat/X: latency (median) relative to baseline X; < 1 is faster',
            'deploy vs train: max |deploy - train| / max |train| of the '
            'outputs (logits or features), FP32 eager, same input',
        ]
    if REPMLP_ONNX in settings.candidates:
        out.append(
            f'{REPMLP_ONNX}: the {REPMLP_DEPLOY} segmentor exported to ONNX '
            f'(opset {DEFAULT_OPSET}, fixed input size; dynamic axes when '
            '--batch > 1) and timed as onnxruntime '
            'session.run on the CPU with as many intra-op threads as '
            'PyTorch; its input is raw pixels (0..255) normalized inside the '
            'graph; params and MACs are the PyTorch deploy model\'s; deploy '
            'vs train compares its logits with the train structure\'s data '
            'preprocessor + encode_decode on the same pixels; no peak '
            'memory (onnxruntime reuses the arena its warm-up filled); fp32 '
            'CPU segmentor inference only')
    if settings.fast_path:
        out.append('fast path: each workload timed again, in the same run, '
                   'as mmseg_repmlp.apis.accelerate() runs it for '
                   'users (init_model / tools/test.py --compile --cuda-graph '
                   '--dtype): backbone, neck and decode-head logits as one '
                   'function; lat/eager = its latency over the eager one; '
                   'fast vs eager: max |fast - eager| / max |eager| of the '
                   'outputs, same dtype, same input')
    if settings.compile:
        out.append('compile: torch.compile (default mode) on that function; '
                   'training: on the forward and loss of a step (backbone, '
                   'neck, heads, losses); compilation happens in the '
                   'warm-up, untimed')
    if settings.cuda_graph:
        out.append('CUDA graphs: inference replays one graph per input size, '
                   'captured in the warm-up (with compile: inductor '
                   'reduce-overhead); training steps have no graph path')
    if settings.engines:
        out.append(
            'engines: each inference workload timed again, in the same run, '
            'in each engine: torch-* = mmseg_repmlp.apis.accelerate as users '
            'get it on the CPU (channels_last, bf16 autocast with the '
            'weights held cast; no compiler); onnxruntime-*/openvino-* = the '
            'workload (normalized input, features or logits) exported to '
            'ONNX with the TorchScript exporter, opset '
            f'{DEFAULT_OPSET}, fixed size; OpenVINO reads that file and '
            'compiles it for the CPU with INFERENCE_PRECISION_HINT f32/bf16 '
            'set explicitly, PERFORMANCE_HINT LATENCY and as many threads as '
            'PyTorch; fast vs eager = max |engine - eager| / max |eager| of the '
            'outputs (eager in --dtype)')
    if settings.cpu_peak_gflops:
        peaks = ', '.join(f'{k} {v:.0f}' for k, v in
                          settings.cpu_peak_gflops.items())
        out.append(f'% peak (CPU): achieved GFLOP/s over the measured '
                   f'large-GEMM roofline of the record\'s precision '
                   f'(torch.mm 2048^3, best of 5: {peaks} GFLOP/s)')
    if settings.is_cuda and settings.peak_tflops:
        out.append(f'% peak: achieved TFLOP/s over {settings.peak_tflops:g} '
                   'TFLOP/s (dense bf16 tensor-core peak, whatever --dtype)')
    return out


def _own_model_notes(settings: BenchmarkSettings) -> List[str]:
    """What the candidates of ``tools/benchmark.py CONFIG CHECKPOINT`` run
    (see :mod:`.own_model`)."""
    out = [
        'pytorch-deploy: the segmentor init_model builds from the checkpoint '
        '(deploy form; a training checkpoint re-parameterized), as '
        'inference_model runs it; pytorch-train: the training form of a '
        'training checkpoint; both timed as encode_decode (backbone, heads, '
        'logits resized to the input) on a normalized input, without the '
        'data preprocessor and test pipeline',
        f'lat/{OWN_DEPLOY}: latency (median) relative to '
        f'{OWN_DEPLOY}; < 1 is faster',
        'vs reference: max |out - ref| / max |ref| of the logits, same '
        'input: against the training form (training checkpoint), else '
        f'against {OWN_DEPLOY} (a deploy checkpoint holds no training '
        'form)',
    ]
    if settings.onnx:
        out.append(
            'onnx:FILE: the file in onnxruntime session.run on the CPU, with '
            'as many intra-op threads as PyTorch, fed seeded random 0..255 '
            'BGR float32 pixels of the input shape (normalized inside the '
            'graph); vs reference runs the reference\'s data preprocessor + '
            'encode_decode on the same pixels (empty for a graph that '
            'outputs labels); params and MACs are the PyTorch deploy '
            'model\'s; no peak memory (onnxruntime reuses the arena its '
            'warm-up filled); fp32 only')
    return out


def add_ratios(records: List[Record]) -> None:
    """Set each record's ``ratio_to[baseline]`` = its latency / baseline's.

    Records are compared only within the same phase, scope and input.
    """
    groups = defaultdict(list)
    for rec in records:
        groups[_group_key(rec)].append(rec)
    for group in groups.values():
        bases = [r for r in group if r['baseline'] and r['latency_ms']]
        for rec in group:
            if not rec['latency_ms']:
                continue
            rec['ratio_to'] = {
                base['candidate']: rec['latency_ms']['median'] /
                base['latency_ms']['median']
                for base in bases
            }


def _group_key(rec: Record) -> Tuple:
    return (rec['phase'], rec['scope'], tuple(rec['input_shape']),
            rec['path'])


def _fmt(value: Optional[float], spec: str, suffix: str = '') -> str:
    return '' if value is None else f'{value:{spec}}{suffix}'


def _ms(value: Optional[float]) -> str:
    return _fmt(value, '.2f' if value is not None and value < 10 else '.1f')


def _stat(key: str, stat: str) -> Callable[[Record], Optional[float]]:
    return lambda r: r[key][stat] if r[key] else None


#: (header, value of a record or None, format of the value)
_COLUMNS: Sequence[Tuple[str, Callable[[Record], Any], Callable[[Any],
                                                                  str]]] = (
    ('candidate', lambda r: r['candidate'], str),
    ('backbone', lambda r: r['backbone'], str),
    ('params (M)', lambda r: r['params'] and r['params'] / 1e6,
     lambda v: _fmt(v, '.3g')),
    ('GMACs', lambda r: r['macs'] and r['macs'] / 1e9,
     lambda v: _fmt(v, '.3g')),
    ('median ms', _stat('latency_ms', 'median'), _ms),
    ('p90 ms', _stat('latency_ms', 'p90'), _ms),
    ('min ms', _stat('latency_ms', 'min'), _ms),
    ('max ms', _stat('latency_ms', 'max'), _ms),
    ('GPU ms', _stat('gpu_ms', 'median'), _ms),
    ('img/s', lambda r: r['images_per_s'], lambda v: _fmt(v, '.2f')),
    ('peak MB', lambda r: r['peak_mem_mb'], lambda v: _fmt(v, '.0f')),
    ('saved MB', lambda r: r['saved_mb'], lambda v: _fmt(v, '.0f')),
    ('TFLOP/s', lambda r: r['tflops'], lambda v: _fmt(v, '.3g')),
    ('% peak', lambda r: r['peak_fraction'],
     lambda v: _fmt(v and 100 * v, '.1f', '%')),
    ('lat/eager', lambda r: r['ratio_to_eager'],
     lambda v: _fmt(v, '.2f', 'x')),
    ('deploy vs train', lambda r: r['deploy_vs_train_max_rel_diff'],
     lambda v: _fmt(v, '.1e')),
    ('fast vs eager', lambda r: r['fast_vs_eager_max_rel_diff'],
     lambda v: _fmt(v, '.1e')),
    ('note', lambda r: r['skipped'] or r['error'], str),
)


#: Column titles of a report on the user's own model: the description
#: column says what runs, and the agreement is against a reference that
#: is not always the training form (see :func:`_own_model_notes`).
_OWN_MODEL_TITLES = {'backbone': 'runs', 'deploy vs train': 'vs reference'}


def _table(group: List[Record],
           titles: Optional[Dict[str, str]] = None) -> List[str]:
    baselines = [r['candidate'] for r in group if r['baseline']]
    columns = list(_COLUMNS)
    for base in baselines:
        columns.insert(-2, (f'lat/{base}',
                            lambda r, b=base: r['ratio_to'].get(b),
                            lambda v: _fmt(v, '.2f', 'x')))
    # Columns empty for every row (GPU ms on a CPU, ...) are left out.
    columns = [((titles or {}).get(title, title), get, fmt)
               for title, get, fmt in columns
               if any(get(r) is not None for r in group)]
    lines = ['| ' + ' | '.join(c[0] for c in columns) + ' |',
             '|' + '---|' * len(columns)]
    for rec in group:
        cells = [fmt(get(rec)) if get(rec) is not None else ''
                 for _, get, fmt in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def format_markdown(result: Dict[str, Any]) -> str:
    """The whole report: environment line, one table per workload, notes."""
    env, settings = result['environment'], result['settings']
    own = settings.get('config')
    title = (f'## Benchmark of {own} with {settings["checkpoint"]}: ' if own
             else '## Benchmark: ')
    runtimes = f'torch {env["torch"]}' + (
        f', onnxruntime {env["onnxruntime"]}' if env.get('onnxruntime')
        else '') + (f', OpenVINO {env["openvino"]}' if env.get('openvino')
                    else '')
    features = env.get('cpu_features')
    lines = [
        f'{title}{env["device_name"]} ({env["device"]}), {runtimes}, '
        f'{env["date"]}', '',
        f'dtype {settings["dtype"]}, channels_last '
        f'{settings["channels_last"]}, cudnn.benchmark '
        f'{settings["cudnn_benchmark"]}, compile {settings["compile"]}, CUDA '
        f'graphs {settings["cuda_graph"]}; warm-up {settings["warmup"]}, '
        f'repeats {settings["repeats"]}; ' +
        ('' if own else f'UPerNet {settings["head_channels"]} channels; ') +
        f'CPU threads {env["torch_threads"]}, load average '
        f'{env["load_average"]}', '',
        f'CPU: {env["cpu"]}, {env["cpu_count"]} cores; features: ' +
        ('unknown' if features is None else ' '.join(features) or
         f'none of {" ".join(CPU_FEATURES)}'), ''
    ]
    groups = defaultdict(list)
    for rec in result['records']:
        groups[_group_key(rec)].append(rec)
    if settings.get('engines'):
        lines += engines_table(result['records'])
    for (phase, scope, shape, path), group in groups.items():
        lines += [f'### {phase} / {scope} / input {"x".join(map(str, shape))}'
                  f' / {group[0]["dtype"]} / {_path_label(path, settings)}',
                  '', *_table(group, _OWN_MODEL_TITLES if own else None),
                  '']
    lines += ['Notes:'] + [f'- {n}' for n in result['notes']]
    if 'elapsed_s' in result:
        lines.append(f'- whole run: {result["elapsed_s"]:.0f} s')
    for rec in result['records']:
        if rec.get('profile'):
            shape = 'x'.join(map(str, rec['input_shape']))
            lines += ['', f'### Profile: {rec["candidate"]} {rec["phase"]} '
                      f'{rec["scope"]} {shape} {rec["path"]} {rec["dtype"]}',
                      '', '```', rec['profile'].rstrip(), '```']
    return '\n'.join(lines)


def engines_table(records: List[Record]) -> List[str]:
    """Inference latency (median ms) of every candidate in every engine,
    side by side: one row per candidate, scope and input; ``GFLOP/s``
    and ``% peak`` of the best engine."""
    paths: List[str] = []
    rows: Dict[Tuple, Dict[str, Record]] = defaultdict(dict)
    for rec in records:
        if rec['phase'] != 'inference' or rec['path'] not in (
                'eager', *ENGINES):
            continue
        name = ('eager ' + rec['dtype'] if rec['path'] == 'eager' else
                rec['path'])
        if name not in paths:
            paths.append(name)
        key = (rec['scope'], 'x'.join(map(str, rec['input_shape'][2:])),
               rec['candidate'], rec['backbone'])
        rows[key][name] = rec
    lines = ['### Engines side by side (inference, median ms)', '',
             '| scope | input | candidate | backbone | GMACs | ' +
             ' | '.join(paths) + ' | best | GFLOP/s | % peak |',
             '|' + '---|' * (len(paths) + 8)]
    for (scope, shape, cand, backbone), by in rows.items():
        timed = {k: r for k, r in by.items() if r['latency_ms']}
        best = min(timed, key=lambda k: timed[k]['latency_ms']['median'],
                   default=None)
        macs = next((r['macs'] for r in by.values() if r['macs']), None)
        cells = [_ms(timed[k]['latency_ms']['median']) if k in timed else
                 ('skip' if k in by and by[k]['skipped'] else '')
                 for k in paths]
        rec = timed.get(best)
        lines.append('| ' + ' | '.join([
            scope, shape, cand, backbone,
            _fmt(macs and macs / 1e9, '.3g'), *cells, best or '',
            _fmt(rec and rec['tflops'] * 1e3, '.0f'),
            _fmt(rec and rec['peak_fraction'] and 100 * rec['peak_fraction'],
                 '.0f', '%')]) + ' |')
    return lines + ['']


def _path_label(path: str, settings: Dict[str, Any]) -> str:
    if path == 'eager':
        return 'eager'
    if path in ENGINES:
        return f'engine {path}'
    parts = [name for name, on in (('compile', settings['compile']),
                                   ('CUDA graphs', settings['cuda_graph']))
             if on]
    return 'fast path (' + ' + '.join(parts) + ')'


def write_json(result: Dict[str, Any], path: str) -> None:
    """Write ``result`` to ``path`` atomically (folders are created): a
    reader, or a run killed mid-write, never sees half a file."""
    text = json.dumps(result, indent=2) + '\n'
    atomic_write(path, lambda f: f.write(text.encode()))
