"""tools/benchmark.py on the CPU: it runs and reports every number.

A smoke test: a tiny RepMLPNet, a narrow head and 64x128 inputs keep it well
under a minute on 2 cores. Timings are never compared (they depend on the
machine and on whatever else runs on it).
"""
import json
import math

import pytest
import torch

from mmseg_repmlp.benchmark import CANDIDATES as ALL_CANDIDATES
from mmseg_repmlp.benchmark import (
    SMALL_PRESET,
    default_candidates,
    format_markdown,
    load_arch,
    onnx_available,
    parse_shape,
    resolve_settings,
    run_benchmark,
)
from mmseg_repmlp.benchmark.ablation import VARIANTS, _variants_for
from mmseg_repmlp.benchmark.complexity import count_macs
from mmseg_repmlp.benchmark.engines import openvino_version
from mmseg_repmlp.models.layers import RepMLPBlock

from .conftest import CONFIG, TINY_ARCH, run, tool

CANDIDATES = ('repmlp-train', 'repmlp-deploy', 'repmlp-onnx', 'resnet50')


def _skipped(rec):
    """Whether the smoke run must skip a record, and why (a word of it)."""
    if rec['candidate'] == 'repmlp-deploy':
        return rec['phase'] == 'train' and 'inference-only'
    if rec['candidate'] == 'repmlp-onnx':
        if rec['phase'] == 'train':
            return 'inference-only'
        return rec['scope'] == 'backbone' and 'whole segmentor'
    return False


@pytest.fixture(scope='module')
def benchmark(tmp_path_factory):
    """JSON and stdout of one tiny run: inference and train, both scopes."""
    tmp = tmp_path_factory.mktemp('benchmark')
    arch = tmp / 'tiny_arch.json'
    arch.write_text(json.dumps(TINY_ARCH))
    out = tmp / 'result.json'
    done = run([
        *tool('benchmark.py'), '--device', 'cpu', '--arch', arch,
        '--shape', 64, 128, '--train-shape', 64, 128, '--warmup', 1,
        '--repeats', 2, '--candidates', *CANDIDATES, '--mode', 'both',
        '--scope', 'both', '--head-channels', 32,
        # One thread: steady on a CPU shared with other jobs.
        '--threads', 1, '--out-json', out
    ], timeout=300)
    return json.loads(out.read_text()), done.stdout


def test_json_has_environment_and_settings(benchmark):
    result, _ = benchmark
    env = result['environment']
    for key in ('torch', 'mmseg', 'device_name', 'cpu_count', 'date',
                'command'):
        assert env[key], key
    assert 'benchmark.py' in env['command']
    settings = result['settings']
    assert settings['shapes'] == [[64, 128]]
    assert settings['arch']['channels'] == list(TINY_ARCH['channels'])
    assert settings['threads'] == 1 and result['notes']


def test_every_candidate_and_workload_is_measured(benchmark):
    result, _ = benchmark
    records = result['records']
    got = {(r['candidate'], r['phase'], r['scope']) for r in records}
    assert got == {(c, p, s) for c in CANDIDATES
                   for p in ('inference', 'train')
                   for s in ('backbone', 'segmentor')}
    for rec in records:
        if _skipped(rec):
            assert _skipped(rec) in rec['skipped']
            assert rec['latency_ms'] is None and rec['macs'] is None
            continue
        assert rec['error'] is None and rec['skipped'] is None
        assert rec['params'] > 0 and rec['macs'] > 0
        lat = rec['latency_ms']
        assert len(lat['samples']) == 2
        assert 0 < lat['min'] <= lat['median'] <= lat['max']
        assert rec['images_per_s'] > 0 and rec['tflops'] > 0
        if rec['candidate'] == 'repmlp-onnx':
            assert rec['peak_mem_mb'] is None
            assert 'arena' in rec['peak_mem_method']
        else:
            assert rec['peak_mem_mb'] >= 0
            assert 'RSS' in rec['peak_mem_method']
        assert rec['gpu_ms'] is None and rec['peak_fraction'] is None
        assert ((rec['saved_mb'] or 0) > 0) == (rec['phase'] == 'train')
        assert rec['ratio_to']['resnet50'] > 0
        batch = 2 if rec['phase'] == 'train' else 1
        assert rec['input_shape'] == [batch, 3, 64, 128]


def test_deploy_agrees_with_train_structure(benchmark):
    result, _ = benchmark
    checked = [r for r in result['records']
               if r['candidate'] == 'repmlp-deploy'
               and r['phase'] == 'inference']
    assert len(checked) == 2
    for rec in checked:
        assert rec['deploy_vs_train_max_rel_diff'] < 1e-4
        assert rec['structure'] == 'deploy'
    baseline = [r for r in result['records'] if r['candidate'] == 'resnet50'
                and r['latency_ms']]
    assert all(r['ratio_to']['resnet50'] == 1 for r in baseline)


def test_onnx_agrees_with_train_structure(benchmark):
    result, stdout = benchmark
    (rec, ) = [r for r in result['records'] if r['candidate'] == 'repmlp-onnx'
               and not r['skipped']]
    assert (rec['phase'], rec['scope']) == ('inference', 'segmentor')
    assert rec['structure'] == 'onnx'
    # Raw pixels through the graph's own normalisation vs the train
    # structure's data preprocessor + encode_decode.
    assert rec['deploy_vs_train_max_rel_diff'] < 1e-4
    deploy = [r for r in result['records'] if r['candidate'] ==
              'repmlp-deploy' and r['scope'] == 'segmentor' and
              r['phase'] == 'inference']
    assert rec['macs'] == deploy[0]['macs']
    assert any(n.startswith('repmlp-onnx:') for n in result['notes'])
    assert '| repmlp-onnx |' in stdout


def test_onnx_is_skipped_where_it_does_not_apply():
    # Nothing to run: no model is built or exported, and each record says
    # why.
    settings = resolve_settings(dict(
        device='cpu', dtype='bf16', candidates=['repmlp-onnx'],
        phases=('inference', 'train'), shapes=[(64, 128)],
        train_shape=(64, 128)))
    result = run_benchmark(settings, log=lambda message: None)
    reasons = {(r['phase'], r['scope']): r['skipped']
               for r in result['records']}
    assert 'bf16' in reasons['inference', 'segmentor']
    assert 'whole segmentor' in reasons['inference', 'backbone']
    assert 'inference-only' in reasons['train', 'segmentor']
    assert all(r['latency_ms'] is None for r in result['records'])
    assert 'repmlp-onnx' in ALL_CANDIDATES
    assert ('repmlp-onnx' in default_candidates()) == onnx_available()
    assert resolve_settings({}, small=True).candidates == \
        default_candidates()


def test_stdout_has_a_markdown_table_per_workload(benchmark):
    _, stdout = benchmark
    assert stdout.count('| candidate |') == 4
    assert '### inference / segmentor / input 1x3x64x128' in stdout
    assert '### train / backbone / input 2x3x64x128' in stdout
    assert 'lat/resnet50' in stdout


def test_settings_precedence_and_errors(tmp_path):
    small = resolve_settings(dict(repeats=7), small=True)
    assert small.shapes == SMALL_PRESET['shapes'] and small.repeats == 7
    assert small.device == 'cpu' or small.is_cuda
    assert parse_shape('512x1024') == (512, 1024)
    with pytest.raises(ValueError, match='HxW'):
        parse_shape('512')
    with pytest.raises(ValueError, match='--device cuda'):
        resolve_settings(dict(device='cpu', cuda_graph=True))
    with pytest.raises(ValueError, match='bf16'):
        resolve_settings(dict(device='cpu', dtype='fp16',
                              phases=('train', )))
    with pytest.raises(ValueError, match='B256'):
        load_arch(str(tmp_path / 'missing.json'))
    assert load_arch('b256') == 'B256'


def test_compile_times_the_fast_path_next_to_eager(tmp_path):
    """--compile: every workload is timed eagerly and through the fast path
    users get (accelerate / FastOptions.wrap), side by side in one run."""
    arch = tmp_path / 'tiny_arch.json'
    arch.write_text(json.dumps(TINY_ARCH))
    out = tmp_path / 'result.json'
    done = run([
        *tool('benchmark.py'), '--device', 'cpu', '--arch', arch,
        '--shape', 64, 128, '--warmup', 1, '--repeats', 2, '--candidates',
        'repmlp-deploy', 'resnet50', '--mode', 'inference', '--scope',
        'backbone', '--threads', 1, '--compile',
        '--out-json', out
    ], timeout=600)
    records = json.loads(out.read_text())['records']
    got = sorted((r['candidate'], r['scope'], r['path']) for r in records)
    assert got == sorted((c, 'backbone', p)
                         for c in ('repmlp-deploy', 'resnet50')
                         for p in ('eager', 'fast'))
    for rec in records:
        assert rec['error'] is None and rec['latency_ms']['median'] > 0
        assert rec['macs'] > 0
        # Baselines compared within each path; fast over eager per model.
        assert rec['ratio_to']['resnet50'] > 0
        if rec['path'] == 'fast':
            assert rec['ratio_to_eager'] > 0
            # The compiled model's outputs, compared in the same run.
            assert rec['fast_vs_eager_max_rel_diff'] < 1e-4
        else:
            assert rec['ratio_to_eager'] is None
            assert rec['fast_vs_eager_max_rel_diff'] is None
    assert done.stdout.count('| candidate |') == 2
    assert '/ fp32 / fast path (compile)' in done.stdout
    assert 'lat/eager' in done.stdout and 'fast vs eager' in done.stdout


def test_compiled_training_step_covers_direct_forward_calls():
    """--compile compiles a training step's forward and loss as one
    function, so it covers the heads' forward, which MMSegmentation's
    decode heads call as self.forward(...) from loss() (nn.Module.compile()
    compiles __call__ and would miss it)."""
    from mmengine.model import BaseModel
    from torch.testing import assert_close

    from mmseg_repmlp.benchmark.settings import BenchmarkSettings
    from mmseg_repmlp.benchmark.workloads import train_workload

    compiling = []

    class Head(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.conv_seg = torch.nn.Conv2d(4, 3, 1)

        def forward(self, x):
            compiling.append(torch.compiler.is_compiling())
            return self.conv_seg(x)

        def loss(self, x, samples):
            labels = torch.cat([s.gt_sem_seg.data for s in samples])
            return dict(loss_ce=torch.nn.functional.cross_entropy(
                self.forward(x), labels))

    class Segmentor(BaseModel):

        def __init__(self):
            super().__init__()
            self.backbone = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.decode_head = Head()

        def loss(self, x, samples):
            return self.decode_head.loss(self.backbone(x), samples)

        def forward(self, *args, **kwargs):
            raise NotImplementedError

    torch._dynamo.reset()
    settings = BenchmarkSettings(device='cpu', candidates=('repmlp-train', ))
    x = torch.randn(2, 3, 8, 8)
    eager, fast = Segmentor(), Segmentor()
    fast.load_state_dict(eager.state_dict())
    keys = set(fast.state_dict())
    ref = train_workload(eager, 'segmentor', x, settings, 3)()
    assert compiling == [False]
    compiling.clear()
    out = train_workload(fast, 'segmentor', x, settings, 3, fast=True)()
    assert compiling and all(compiling)
    assert_close(out, ref, rtol=1e-5, atol=1e-5)
    # The same SGD update: the backward pass ran through the compiled code.
    for a, b in zip(eager.parameters(), fast.parameters()):
        assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert set(fast.state_dict()) == keys


def test_progress_is_reported_after_each_candidate():
    """A run cut short (a time limit) keeps every finished candidate."""
    settings = resolve_settings(dict(
        device='cpu', arch=dict(TINY_ARCH), shapes=[(64, 128)],
        phases=('inference', ), scopes=('backbone', ),
        candidates=['repmlp-train', 'resnet50'], warmup=0, repeats=1,
        head_channels=32, threads=1))
    seen = []
    result = run_benchmark(
        settings, log=lambda message: None,
        on_progress=lambda partial: seen.append(
            (partial['complete'], [r['candidate'] for r in partial['records']
                                   if r['latency_ms']])))
    assert seen == [(False, ['repmlp-train']),
                    (False, ['repmlp-train', 'resnet50'])]
    assert result['complete'] is True


def test_an_existing_json_is_not_replaced_without_force(tmp_path):
    out = tmp_path / 'result.json'
    out.write_text('{"mine": 1}')
    done = run([*tool('benchmark.py'), '--device', 'cpu', '--out-json', out],
               check=False, timeout=120)
    assert done.returncode != 0
    assert '--force' in done.stderr
    assert out.read_text() == '{"mine": 1}'


@pytest.mark.cuda
def test_cuda_run_reports_gpu_time_and_replays_graphs(tmp_path):
    """On a GPU: CUDA-event time, CUDA memory, % of peak, kernel profiles,
    bf16 autocast and the CUDA-graph fast path next to eager."""
    arch = tmp_path / 'tiny_arch.json'
    arch.write_text(json.dumps(TINY_ARCH))
    out = tmp_path / 'result.json'
    done = run([
        *tool('benchmark.py'), '--device', 'cuda', '--arch', arch,
        '--shape', 64, 128, '--train-shape', 64, 128, '--warmup', 2,
        '--repeats', 3, '--candidates', 'repmlp-train', 'repmlp-deploy',
        'resnet50', '--mode', 'both', '--scope', 'both', '--head-channels',
        32, '--dtype', 'bf16', '--cuda-graph', '--cudnn-benchmark',
        '--profile', '--peak-tflops', 100, '--out-json', out
    ], timeout=600)
    result = json.loads(out.read_text())
    assert result['complete'] and result['environment']['cuda']
    measured = [r for r in result['records'] if not r['skipped']]
    assert {(r['phase'], r['path']) for r in measured} == {
        ('inference', 'eager'), ('inference', 'fast'), ('train', 'eager')}
    for rec in measured:
        assert rec['error'] is None, rec['error']
        assert rec['gpu_ms']['median'] > 0
        assert 'cuda' in rec['peak_mem_method'] and rec['peak_mem_mb'] > 0
        assert rec['peak_fraction'] > 0
        if rec['phase'] == 'inference':
            assert rec['profile'] and 'CUDA' in rec['profile']
        if rec['path'] == 'fast':
            assert rec['ratio_to_eager'] > 0
            # The replayed graph runs the eager kernels at the same dtype.
            assert rec['fast_vs_eager_max_rel_diff'] < 1e-3
    assert '/ bf16 / fast path (CUDA graphs)' in done.stdout
    assert 'GPU ms' in done.stdout and '% peak' in done.stdout


def test_saved_for_backward_counts_each_activation_once():
    from mmseg_repmlp.benchmark.timing import saved_for_backward_mb
    weight = torch.nn.Parameter(torch.randn(256, 256))
    x = torch.randn(1024, 256, requires_grad=True)

    def step():
        # mm saves x (1 MiB) and weight (a parameter: excluded); tanh saves
        # its output (1 MiB); x is saved twice but stored once.
        y = torch.tanh(x @ weight)
        (y * x).sum().backward()  # mul saves y and x: nothing new

    assert saved_for_backward_mb(step, [weight]) == pytest.approx(2.0)
    assert saved_for_backward_mb(step, []) == pytest.approx(2.25)


def test_agreement_columns_take_the_worst_output_and_keep_nan():
    from mmseg_repmlp.benchmark.complexity import worst_relative_difference
    ref = (torch.ones(2, 3), [torch.full((4, ), 2.0)])
    out = (torch.ones(2, 3), [torch.full((4, ), 2.5)])
    assert worst_relative_difference(ref, out) == pytest.approx(0.25)
    broken = (torch.full((2, 3), float('nan')), out[1])
    assert math.isnan(worst_relative_difference(ref, broken))


def test_p90_lies_between_the_median_and_the_max():
    from mmseg_repmlp.benchmark.timing import Timing
    summary = Timing.summary([float(v) for v in range(1, 11)])
    assert summary['median'] < summary['p90'] <= summary['max']
    assert summary['p90'] == pytest.approx(9.1)
    assert Timing.summary([4.0])['p90'] == 4.0


def _cpu_flags():
    """The CPU's flags from /proc/cpuinfo, None where it has none."""
    try:
        with open('/proc/cpuinfo') as f:
            lines = [line for line in f if line.startswith('flags')]
    except OSError:
        return None
    return set(lines[0].split(':', 1)[1].split()) if lines else None


@pytest.fixture(scope='module')
def own_onnx(trained, tmp_path_factory):
    """An export of the trained model at 64x128, and one of the same
    model with another decode-head bias: the benchmark must run the files
    it is given, and say which one differs from the checkpoint."""
    from mmseg_repmlp.apis import init_model
    from mmseg_repmlp.export.onnx import export_onnx
    work, _ = trained
    folder = tmp_path_factory.mktemp('own_onnx')
    model = init_model(CONFIG, str(work / 'iter_4_deploy.pth'), device='cpu')
    export_onnx(model, str(folder / 'model.onnx'), (64, 128))
    with torch.no_grad():
        model.decode_head.conv_seg.bias[0] += 10.0
    export_onnx(model, str(folder / 'other.onnx'), (64, 128))
    return folder / 'model.onnx', folder / 'other.onnx'


def test_own_model_is_timed_next_to_its_onnx_files(trained, own_onnx,
                                                   tmp_path):
    work, _ = trained
    out = tmp_path / 'own.json'
    done = run([
        *tool('benchmark.py'), CONFIG, work / 'iter_4.pth', '--onnx',
        *own_onnx, '--repeats', 1, '--warmup', 0, '--shape', 64, 128,
        '--threads', 1, '--out-json', out
    ], timeout=600)
    result = json.loads(out.read_text())
    records = {r['candidate']: r for r in result['records']}
    assert list(records) == ['pytorch-deploy', 'pytorch-train',
                             'onnx:model.onnx', 'onnx:other.onnx']
    for name, rec in records.items():
        assert rec['error'] is None and rec['skipped'] is None, name
        assert rec['input_shape'] == [1, 3, 64, 128]
        assert rec['latency_ms']['p90'] > 0 and rec['images_per_s'] > 0
        assert rec['ratio_to']['pytorch-deploy'] > 0
        assert f'| {name} |' in done.stdout
    # Against the training form of the checkpoint: the deploy form and its
    # export agree; the other file does not, so it is the file that ran.
    assert records['pytorch-deploy']['deploy_vs_train_max_rel_diff'] < 1e-4
    assert records['onnx:model.onnx']['deploy_vs_train_max_rel_diff'] < 1e-4
    assert records['onnx:other.onnx']['deploy_vs_train_max_rel_diff'] > 1e-2
    env = result['environment']
    assert env['onnxruntime']
    flags = _cpu_flags()
    if flags is not None:
        for flag in ('avx2', 'avx512f', 'avx512_bf16', 'avx512_vnni'):
            assert (flag in env['cpu_features']) == (flag in flags), flag
        assert {f for f in env['cpu_features'] if f.startswith('amx')} == \
            {f for f in flags if f.startswith('amx_')}
    assert result['settings']['config'] == CONFIG
    for text in ('p90 ms', 'img/s', 'lat/pytorch-deploy', 'vs reference',
                 'features:', 'onnxruntime ' + env['onnxruntime']):
        assert text in done.stdout, text


def test_own_model_options_are_checked_before_anything_runs(trained,
                                                            own_onnx):
    from mmseg_repmlp.cli.benchmark import main
    work, _ = trained
    ckpt = str(work / 'iter_4_deploy.pth')
    onnx = str(own_onnx[0])
    for argv, message in (
        ([CONFIG, ckpt, '--arch', 'B256'], 'backbone comparison'),
        ([CONFIG, ckpt, '--mode', 'train'], 'backbone comparison'),
        ([CONFIG], 'CHECKPOINT'),
        (['--onnx', onnx], 'CONFIG and CHECKPOINT'),
        ([CONFIG, ckpt, '--onnx', onnx, '--shape', 64, 96],
         '--shape 64 128'),
        ([CONFIG, ckpt, '--onnx', ckpt], 'not an ONNX model'),
    ):
        with pytest.raises(SystemExit, match=message):
            main([str(a) for a in argv])


@pytest.mark.parametrize('sharesets', [
    1,
    2,  # the window FC is one baddbmm
])
def test_macs_of_a_deploy_block_by_hand(sharesets):
    """count_macs against a hand count: each of the N*C*H*W outputs of the
    window FC is a dot product over one h x w window, and the Global
    Perceptron is two C x C/4 products per image (biases are no MACs)."""
    n, c, height, width, (h, w) = 2, 8, 12, 16, (4, 4)
    block = RepMLPBlock(c, (h, w), sharesets, deploy=True).eval()
    expected = n * c * height * width * h * w + n * 2 * c * (c // 4)
    assert count_macs(block, torch.randn(n, c, height, width)) == expected
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False).eval()
    assert count_macs(conv, torch.randn(1, 3, 16, 16)) == 8 * 3 * 9 * 16 * 16


def test_engines_are_timed_side_by_side(tmp_path, monkeypatch):
    """--engines: each inference workload again in every engine, in the
    same run; OpenVINO missing is a skip with a message; an engine added
    with register_engine (the int8 hook) runs like the built-in ones."""
    from mmseg_repmlp.benchmark import engines as engines_mod
    from mmseg_repmlp.benchmark.engines import (
        ENGINES,
        Engine,
        Prepared,
        register_engine,
    )
    from mmseg_repmlp.benchmark.workloads import forward_fn, image_metas

    calls = []

    def prepare_int8(model, scope, x, threads, workdir):
        assert workdir and x.shape == (1, 3, 64, 128)
        path = engines_mod.export_workload(
            model, scope, x, f'{workdir}/{scope}.onnx')
        calls.append(path)
        forward = forward_fn(model, scope, image_metas(1, (64, 128)))
        return Prepared(torch.no_grad()(lambda: forward(x)),
                        profile=lambda: 'int8')

    monkeypatch.setitem(ENGINES, 'fake-int8', Engine(
        'fake-int8', 'fake', 'int8', prepare_int8))
    with pytest.raises(ValueError, match='exists'):
        register_engine(ENGINES['fake-int8'])
    engines = ['torch-fp32', 'torch-bf16', 'torch-compiled-bf16',
               'onnxruntime-fp32', 'openvino-fp32', 'openvino-bf16',
               'openvino-int8', 'onnxruntime-int8']
    settings = resolve_settings(dict(
        device='cpu', shapes=[(64, 128)], arch=TINY_ARCH, head_channels=32,
        warmup=1, repeats=2, candidates=('repmlp-deploy', ),
        phases=('inference', ), scopes=('backbone', 'segmentor'),
        threads=1, engines=engines + ['fake-int8'],
        cpu_peak_gflops={'fp32': 100.0, 'bf16': 200.0}))
    result = run_benchmark(settings, log=lambda _: None)
    records = result['records']
    assert {r['path'] for r in records} == {'eager', *engines, 'fake-int8'}
    for rec in records:
        engine = ENGINES.get(rec['path'])
        if rec['skipped']:
            assert engine is not None and engine.unavailable()
            assert rec['skipped'] == engine.unavailable()
            continue
        assert rec['error'] is None and rec['latency_ms']['median'] > 0
        assert rec['macs'] > 0
        # % peak against the roofline of the record's precision (none
        # given for int8).
        assert (rec['peak_fraction'] is None) == (rec['dtype'] == 'int8')
        if engine is None or rec['path'] == 'fake-int8':
            continue
        assert rec['dtype'] == engine.precision
        # INT8 (NNCF, calibrated on the timed input): close, not equal.
        tol = {'bf16': 3e-2, 'int8': 0.25}.get(engine.precision, 1e-4)
        assert rec['fast_vs_eager_max_rel_diff'] < tol, (
            rec['path'], rec['scope'], rec['fast_vs_eager_max_rel_diff'])
    assert len(calls) == 2  # one per scope; the file exported once
    text = format_markdown(result)
    assert '### Engines side by side' in text
    if openvino_version() is None:
        assert 'OpenVINO is not installed' in text
    with pytest.raises(ValueError, match='Unknown engines'):
        resolve_settings(dict(device='cpu', engines=('tensorrt', )))


def test_ablation_variants_end_with_the_fused_block_alone_taken_out():
    bf16 = _variants_for('bf16')
    assert [name for name, _ in bf16] == [name for name, *_ in VARIANTS]
    fp32 = dict(_variants_for('fp32'))
    assert '+ weights held cast' not in fp32  # a no-op in fp32
    for variants in (dict(bf16), fp32):
        flags = list(variants.values())
        assert len(set(flags)) == len(flags)
        # The last row differs from the one before only by the fused block.
        (*_, before), last = flags[:-1], flags[-1]
        assert last == (False, *before[1:]) and before[0]
