"""accelerate(): autocast, torch.compile and CUDA-graph inference paths."""
import copy
import pickle
import warnings

import pytest
import torch
from mmengine.config import ConfigDict
from torch.testing import assert_close

from mmseg_repmlp import reparameterize_model
from mmseg_repmlp.apis import (
    accelerate,
    fast_inference,
    init_model,
    is_accelerated,
)
from mmseg_repmlp.apis.fast_inference import (
    CUDAGraphCache,
    FastEncoderDecoder,
    native_cpu_dtype,
    resolve_dtype,
)

from ..conftest import CONFIG, randomize_


def _metas(x):
    shape = tuple(x.shape[-2:])
    return [dict(img_shape=shape, pad_shape=shape, ori_shape=shape)
            for _ in range(x.shape[0])]


@pytest.fixture(scope='module')
def segmentor():
    """Deploy-form demo segmentor with random weights and BN statistics."""
    torch.manual_seed(0)
    model = init_model(CONFIG, None, device='cpu', deploy=False)
    return reparameterize_model(randomize_(model).eval(), inplace=True)


def _fresh(segmentor):
    return reparameterize_model(segmentor, inplace=False).eval()


def _reference(model, x):
    with torch.no_grad():
        return model.encode_decode(x, _metas(x))


def test_compiled_inference_matches_eager_whole_and_slide(segmentor):
    """The compiled fast path gives the eager logits for a whole image and
    in slide mode, where every crop goes through it (the crops have the
    whole image's shape: one compiled graph serves all)."""
    model, eager = _fresh(segmentor), _fresh(segmentor)
    x = torch.randn(1, 3, 96, 160)
    ref = _reference(eager, x)
    accelerate(model, compile=True)
    assert is_accelerated(model)
    assert model.fast_inference['compile'] is True
    out = _reference(model, x)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    scale = ref.abs().max()
    assert_close(out / scale, ref / scale, rtol=1e-5, atol=1e-5)

    big = torch.randn(1, 3, 144, 224)
    for m in (model, eager):
        m.test_cfg = ConfigDict(mode='slide', crop_size=(96, 160),
                                stride=(48, 64))
    compiled, crops = model._fast_dense, []
    model._fast_dense = lambda t: crops.append(tuple(t.shape)) or compiled(t)
    with torch.no_grad():
        ref = eager.inference(big, _metas(big))
        out = model.inference(big, _metas(big))
    assert crops == [(1, 3, 96, 160)] * 4  # 2 x 2 overlapping crops
    assert out.shape == ref.shape == (1, 19, 144, 224)
    scale = ref.abs().max()
    assert_close(out / scale, ref / scale, rtol=1e-5, atol=1e-5)


def test_init_model_compile_makes_the_compiled_fast_path():
    model = init_model(CONFIG, None, device='cpu', compile=True)
    assert is_accelerated(model)
    assert model.fast_inference == dict(compile=True, cuda_graph=False,
                                        dtype='float32')


def test_bf16_inference_is_close_and_returns_fp32(segmentor):
    model = _fresh(segmentor)
    x = torch.randn(1, 3, 128, 256)
    ref = _reference(model, x)
    accelerate(model, dtype='bf16')
    out = _reference(model, x)
    assert out.dtype == torch.float32
    # bf16 has an 8-bit mantissa: logits agree to about 2% of their scale.
    # At that precision about a third of the pixels are near ties on every
    # model tried, so labels are compared on all pixels: the random model
    # predicts many classes, and bf16 moves only a few of its labels.
    rel = ((out - ref).abs().max() / ref.abs().max()).item()
    assert 0 < rel < 3e-2
    labels = ref.argmax(1)
    assert len(labels.unique()) >= 4
    assert (out.argmax(1) == labels).float().mean() >= 0.97


def test_inference_model_runs_the_fast_path(segmentor, tiny_cityscapes):
    import glob

    from mmseg_repmlp.apis import inference_model
    image = sorted(glob.glob(str(
        tiny_cityscapes / 'leftImg8bit' / 'val' / '*' / '*.png')))[0]
    eager = _fresh(segmentor)
    eager.cfg, eager.dataset_meta = segmentor.cfg, segmentor.dataset_meta
    fast = _fresh(segmentor)
    fast.cfg, fast.dataset_meta = segmentor.cfg, segmentor.dataset_meta
    calls = []
    accelerate(fast, dtype='bf16')
    original = fast.encode_decode
    fast.encode_decode = lambda *a: calls.append(1) or original(*a)
    ref = inference_model(eager, image).seg_logits.data
    out = inference_model(fast, image).seg_logits.data
    assert calls, 'inference_model did not go through accelerate()'
    # bf16 precision on a random model whose logits reach 1e28: 3.4e-2 of
    # their scale with the plain unit (the default under autocast), 2.9e-2
    # with the fused block, 98.8 % of the labels unchanged with either.
    assert ((out - ref).abs().max() / ref.abs().max()).item() < 4e-2
    assert (out.argmax(0) == ref.argmax(0)).float().mean() >= 0.97


@pytest.mark.parametrize('native', [True, False])
def test_reduced_precision_on_a_cpu_without_it_warns(segmentor, monkeypatch,
                                                      native):
    monkeypatch.setattr(fast_inference, 'native_cpu_dtype', lambda d: native)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        accelerate(_fresh(segmentor), dtype='bf16')
    slow = [w for w in caught if 'no native kernels' in str(w.message)]
    assert bool(slow) is not native
    assert all('tools/benchmark.py' in str(w.message) for w in slow)


@pytest.mark.parametrize('flags,bf16,fp16', [
    (None, True, True),  # no /proc/cpuinfo flags: unknown, no warning
    ({'avx2', 'fma'}, False, False),
    ({'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'}, True, False),
    ({'avx512bw', 'avx512vl', 'avx512dq', 'avx512_fp16'}, True, True),
    ({'avx2', 'avx_ne_convert'}, True, True),
])
def test_native_kernels_follow_the_cpu_flags(monkeypatch, flags, bf16, fp16):
    monkeypatch.setattr(fast_inference, 'cpu_flags',
                        lambda: flags and frozenset(flags))
    assert native_cpu_dtype(torch.bfloat16) is bf16
    assert native_cpu_dtype(torch.float16) is fp16


def test_nothing_asked_leaves_the_model_alone(segmentor):
    model = _fresh(segmentor)
    assert accelerate(model, dtype='fp32') is model
    assert not is_accelerated(model)


def test_bad_requests_have_clear_errors(segmentor):
    model = _fresh(segmentor)
    with pytest.raises(ValueError, match='needs the model on a CUDA device'):
        accelerate(model, cuda_graph=True)
    with pytest.raises(ValueError, match='dtype must be one of'):
        accelerate(model, dtype='int8')
    with pytest.raises(ValueError, match='needs the model on a CUDA device'):
        init_model(CONFIG, None, device='cpu', cuda_graph=True)
    accelerate(model, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match='already applied'):
        accelerate(model, dtype='bf16')
    with pytest.raises(TypeError, match='not an encoder-decoder'):
        accelerate(torch.nn.Linear(2, 2), dtype='bf16')
    assert resolve_dtype('fp32') is None
    assert resolve_dtype('fp16') is torch.float16


class Wrapper(torch.nn.Module):
    """Holds a segmentor as DDP and SegTTAModel do."""

    def __init__(self, module):
        super().__init__()
        self.module = module


def test_accelerate_finds_the_segmentor_inside_wrappers(segmentor):
    model = _fresh(segmentor)
    wrapper = Wrapper(model)
    assert accelerate(wrapper, dtype='bf16') is wrapper
    assert is_accelerated(model) and is_accelerated(wrapper)


def test_a_segmentor_subclass_keeps_its_own_methods(segmentor):
    from mmseg.models.segmentors import EncoderDecoder
    calls = []

    class MySegmentor(EncoderDecoder):

        def extract_feat(self, inputs):
            calls.append(inputs.shape)
            return super().extract_feat(inputs)

    model = _fresh(segmentor)
    model.__class__ = MySegmentor
    accelerate(model, dtype='bf16')
    assert isinstance(model, MySegmentor) and is_accelerated(model)
    assert type(model).__name__ == 'FastMySegmentor'
    _reference(model, torch.randn(1, 3, 64, 128))
    assert calls == [(1, 3, 64, 128)]


def test_a_deep_copy_runs_its_own_weights(segmentor):
    model = accelerate(_fresh(segmentor), dtype='bf16')
    x = torch.randn(1, 3, 64, 128)
    ref = _reference(model, x)  # the fast path is made by the first call
    twin = copy.deepcopy(model)
    assert type(twin) is FastEncoderDecoder
    assert twin.fast_inference == model.fast_inference
    with torch.no_grad():  # the copy's logits become minus the original's
        twin.decode_head.conv_seg.weight.neg_()
        twin.decode_head.conv_seg.bias.neg_()
    scale = ref.abs().max()
    assert_close(_reference(twin, x) / scale, -ref / scale)
    assert torch.equal(_reference(model, x), ref)
    restored = pickle.loads(pickle.dumps(twin))
    assert_close(_reference(restored, x) / scale, -ref / scale)


def test_state_dict_keys_are_unchanged_and_load_strictly(segmentor):
    plain = _fresh(segmentor)
    model = accelerate(_fresh(segmentor), dtype='bf16')
    _reference(model, torch.randn(1, 3, 64, 128))
    assert list(model.state_dict()) == list(plain.state_dict())
    assert ([name for name, _ in model.named_modules()] ==
            [name for name, _ in plain.named_modules()])
    model.load_state_dict(plain.state_dict(), strict=True)
    plain.load_state_dict(model.state_dict(), strict=True)


def test_accelerate_twice_is_a_clear_error(segmentor):
    model = accelerate(_fresh(segmentor), dtype='bf16')
    for target in (model, Wrapper(model)):
        with pytest.raises(ValueError, match='already applied'):
            accelerate(target, compile=True)
    assert type(model) is FastEncoderDecoder
    assert model.fast_inference == dict(compile=False, cuda_graph=False,
                                        dtype='bfloat16')


class _ReplayOnCPU:
    """Capture stand-in: the replay reruns the function on the static input.

    It checks the cache's own logic (one capture per input signature, inputs
    copied into the static buffer, outputs not aliased to it) where no GPU
    is available; the real capture is torch.cuda.graph.
    """

    def __init__(self):
        self.captures = 0

    def __call__(self, fn, device, pool=None):
        self.captures += 1
        out = fn()
        return lambda: torch.mul(fn(), 1, out=out)  # same buffer each time


def test_graph_cache_captures_once_per_shape_and_copies_io():
    capture = _ReplayOnCPU()
    cache = CUDAGraphCache(lambda x: x * 2, max_graphs=2, capture=capture)
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    with torch.no_grad():
        out_a = cache(a)
        out_b = cache(b)
        assert capture.captures == 1
        assert_close(out_a, a * 2) and assert_close(out_b, b * 2)
        assert out_a.data_ptr() != out_b.data_ptr()  # copies, not the buffer
        cache(torch.randn(4, 3))
        assert capture.captures == 2
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            c = torch.randn(5, 3)
            assert_close(cache(c), c * 2)  # eager beyond max_graphs
        assert capture.captures == 2
        assert any('run eagerly' in str(w.message) for w in caught)
    with pytest.raises(RuntimeError, match='torch.no_grad'):
        cache(a)


# --- on a GPU (pytest -m cuda): the real capture and inductor's graphs -----
@pytest.mark.cuda
@pytest.mark.parametrize('options,rtol', [
    (dict(cuda_graph=True), 1e-5),
    (dict(cuda_graph=True, dtype='bf16'), 1e-5),
    # Inductor generates its own kernels: float rounding differs.
    (dict(cuda_graph=True, compile=True), 1e-3),
])
def test_cuda_graph_inference_matches_eager(segmentor, options, rtol):
    """Graph replay against the eager model at the same precision, over a
    new input size, a second size and new values of the first size (the
    input is copied into the captured buffer)."""
    model = _fresh(segmentor).cuda()
    eager = _fresh(segmentor).cuda()
    if options.get('dtype'):
        accelerate(eager, dtype=options['dtype'])  # eager autocast
    accelerate(model, **options)
    gen = torch.Generator().manual_seed(0)
    for shape in ((1, 3, 128, 256), (2, 3, 96, 160), (1, 3, 128, 256)):
        x = torch.randn(*shape, generator=gen).cuda()
        ref = _reference(eager, x)
        out = _reference(model, x)
        assert out.dtype == torch.float32 and out.shape == ref.shape
        scale = ref.abs().max()
        assert_close(out / scale, ref / scale, rtol=rtol, atol=rtol)


@pytest.mark.cuda
def test_graph_cache_replays_real_graphs():
    # Two shapes share one memory pool; replaying them in any order, each
    # returns its own result, not a buffer the other graph reused.
    layer = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1),
                                torch.nn.ReLU()).cuda().eval()
    cache = CUDAGraphCache(layer)
    xs = [torch.randn(1, 3, 16, 16, device='cuda'),
          torch.randn(2, 3, 8, 8, device='cuda')]
    with torch.no_grad():
        refs = [layer(x) for x in xs]
        for order in ((0, 1), (1, 0), (0, 0, 1)):
            outs = [(i, cache(xs[i])) for i in order]
            for i, out in outs:
                assert_close(out, refs[i])
    assert len(cache.graphs) == 2


@pytest.mark.cuda
def test_graphs_follow_the_weights_through_copies_and_moves(segmentor):
    """Graphs hold the addresses of the weights they were captured with:
    a deep copy and a model moved away and back must replay graphs of their
    own, current weights."""
    model = accelerate(_fresh(segmentor).cuda(), cuda_graph=True)
    x = torch.randn(1, 3, 64, 128, device='cuda')
    ref = _reference(model, x)  # captures a graph
    scale = ref.abs().max()
    twin = copy.deepcopy(model)
    # Keep the old weights allocated: a stale graph would read them.
    old = [p.data for p in model.parameters()]
    model.cpu().cuda()
    for moved in (twin, model):
        with torch.no_grad():
            moved.decode_head.conv_seg.weight.neg_()
            moved.decode_head.conv_seg.bias.neg_()
        assert_close(_reference(moved, x) / scale, -ref / scale,
                     rtol=1e-5, atol=1e-5)
    del old


def test_held_cast_weights_give_autocast_outputs_bitwise(segmentor):
    """bf16 with the weights held cast (CastWeights) computes exactly what
    autocast computes when it casts them on every call; the parameters,
    the state dict and a weight changed in place are respected."""
    model = _fresh(segmentor)
    plain = _fresh(segmentor)
    x = torch.randn(1, 3, 64, 128)
    accelerate(model, dtype='bf16')
    _reference(model, x)  # makes the fast function

    def both():
        with torch.no_grad():
            out = model._fast_dense(x)
            with torch.autocast('cpu', dtype=torch.bfloat16,
                                cache_enabled=False):
                ref = plain.decode_head.forward(plain.extract_feat(x))
        return out, ref

    out, ref = both()
    assert out.dtype == torch.bfloat16 and torch.equal(out, ref)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(v.dtype != torch.bfloat16
               for v in model.state_dict().values())
    # A weight changed in place is cast again on the next call.
    with torch.no_grad():
        for mod in (model, plain):
            mod.decode_head.conv_seg.weight.mul_(-2)
    out2, ref2 = both()
    assert torch.equal(out2, ref2) and not torch.equal(out2, out)


def test_cast_weights_leave_autograd_to_the_parameters():
    conv = torch.nn.Conv2d(3, 4, 1)
    run = fast_inference.cast_weights_fn(conv, conv, torch.bfloat16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        run(torch.randn(1, 3, 4, 4)).float().sum().backward()
    assert conv.weight.grad is not None
    assert conv.weight.dtype == torch.float32


def test_channels_last_inference_matches_eager(segmentor):
    model, eager = _fresh(segmentor), _fresh(segmentor)
    x = torch.randn(1, 3, 96, 160)
    ref = _reference(eager, x)
    accelerate(model, channels_last=True)
    assert model.fast_inference['channels_last'] is True
    seen = []
    model.backbone.register_forward_pre_hook(
        lambda m, args: seen.append(
            args[0].is_contiguous(memory_format=torch.channels_last)))
    out = _reference(model, x)
    scale = ref.abs().max()
    assert_close(out / scale, ref / scale, rtol=0, atol=1e-5)
    assert seen == [True]


def test_cpu_compile_freezes_the_weights_until_new_ones_are_loaded(
        segmentor):
    """On the CPU, compile=True compiles with inductor's freezing: the
    weights are constants of the compiled code (an in-place edit is not
    seen), and the segmentor's load_state_dict makes it compile again for
    the loaded weights."""
    # Dynamo runs a function eagerly once it has compiled it for 8
    # models; the tests before this one compiled the same functions.
    torch._dynamo.reset()
    model = accelerate(_fresh(segmentor), compile=True)
    x = torch.randn(1, 3, 64, 128)
    ref = _reference(model, x)
    state = copy.deepcopy(model.state_dict())
    for key in ('decode_head.conv_seg.weight', 'decode_head.conv_seg.bias'):
        state[key].neg_()
    with torch.no_grad():
        model.decode_head.conv_seg.weight.neg_()
    assert torch.equal(_reference(model, x), ref)  # frozen
    model.load_state_dict(state)
    scale = ref.abs().max()
    assert_close(_reference(model, x) / scale, -ref / scale, rtol=1e-5,
                 atol=1e-5)


@pytest.mark.parametrize('options', [
    dict(compile=True),
    dict(compile='max-autotune'),
    dict(compile=True, cuda_graph=True),
])
def test_compile_makes_one_static_graph_per_input_size(monkeypatch, options):
    """Every compile path asks for static shapes: with dynamo's automatic
    dynamic shapes, a second input size did not finish compiling the demo
    segmentor within 270 s on 2 cores (static: about 20 s a size)."""
    from mmseg_repmlp.apis.fast_inference import FastOptions

    seen = []
    monkeypatch.setattr(torch, 'compile',
                        lambda fn, **kwargs: seen.append(kwargs) or fn)
    module = torch.nn.Conv2d(3, 4, 1)
    FastOptions(**options).wrap(module)
    assert len(seen) == 1 and seen[0]['dynamic'] is False
