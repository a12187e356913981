"""Locality Injection: the deploy model computes what the training model does."""
import pytest
import torch
from torch.testing import assert_close

from mmseg_repmlp import is_deployed, reparameterize_model
from mmseg_repmlp.models import RepMLPNet
from mmseg_repmlp.models.layers import ConvBN, RepMLPBlock, RepMLPNetUnit
from mmseg_repmlp.utils import reference_scale

from .conftest import NORM_CFG, TINY_ARCH, TINY_RECT_ARCH, randomize_


def assert_outputs_equal(outs, refs, rtol=1e-5, atol=1e-5):
    """Tolerances relative to each output's scale (fp32)."""
    assert len(outs) == len(refs)
    for out, ref in zip(outs, refs):
        scale = reference_scale(ref)
        assert_close(out / scale, ref / scale, rtol=rtol, atol=atol)


def _deploy_pair(arch, seed=0):
    torch.manual_seed(seed)
    model = randomize_(RepMLPNet(arch, norm_cfg=NORM_CFG), seed).eval()
    return model, reparameterize_model(model)


@pytest.mark.parametrize('arch', [TINY_ARCH, TINY_RECT_ARCH])
@pytest.mark.parametrize('size', [(64, 128), (96, 64), (75, 131)])
def test_tiny_archs_equivalent(arch, size):
    model, deployed = _deploy_pair(arch)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        assert_outputs_equal(deployed(x), model(x))


# Local Perceptron kernels other than the released (1, 3): TINY_ARCH's last
# two stages have 2x2 windows, smaller than a 5x5 or 7x7 kernel.
@pytest.mark.parametrize('kernels', [(3, 5), (), (5, ), (1, 3, 5, 7)])
def test_other_local_perceptron_kernels_equivalent(kernels):
    model, deployed = _deploy_pair(dict(TINY_ARCH, kernels=kernels))
    assert model.stages[3][0].repmlp_block.kernels == \
        tuple(kernels)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        assert_outputs_equal(deployed(x), model(x))


# Every released variant, with its real widths, windows and sharesets; depth
# cut to one unit per stage to keep the test fast on two CPU cores (depth
# repeats the same unit, already covered by the tiny archs' multi-unit stages).
# 512x768 gives 2x3 windows in every stage; 300x520 is padded.
@pytest.mark.parametrize('name', ['T224', 'B224', 'T256', 'B256', 'D256',
                                  'L256'])
def test_released_variants_equivalent(name):
    arch = RepMLPNet.arch_zoo[name].to_dict()
    arch['depths'] = (1, 1, 1, 1)
    model, deployed = _deploy_pair(arch)
    side = 256 if name.endswith('256') else 224
    for size in ((2 * side, 3 * side), (300, 520)):
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            assert_outputs_equal(deployed(x), model(x))


def test_deploy_structure_has_no_training_branches():
    model, deployed = _deploy_pair(TINY_ARCH)
    names = set(dict(deployed.named_modules()))
    assert not any(n.endswith(('fc3_bn', 'repconv1', 'repconv3', '.bn'))
                   for n in names)
    # Only prebn1 is left: it cannot move into the shared window FC.
    norms = [n for n, m in deployed.named_modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(n.endswith('prebn1') for n in norms)
    assert is_deployed(deployed) and not is_deployed(model)
    assert deployed.deploy and not model.deploy
    n_train = sum(p.numel() for p in model.parameters())
    n_deploy = sum(p.numel() for p in deployed.parameters())
    assert n_deploy < n_train


def test_deploy_true_builds_the_converted_layout():
    model, deployed = _deploy_pair(TINY_ARCH)
    built = RepMLPNet(TINY_ARCH, deploy=True, norm_cfg=NORM_CFG)
    built.load_state_dict(deployed.state_dict(), strict=True)
    built.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_outputs_equal(built(x), model(x))


def test_reparameterize_is_idempotent_and_copies():
    model, deployed = _deploy_pair(TINY_ARCH)
    assert not model.deploy  # the original is untouched
    state = {k: v.clone() for k, v in deployed.state_dict().items()}
    again = reparameterize_model(deployed, inplace=True)
    assert again is deployed
    for k, v in again.state_dict().items():
        assert torch.equal(v, state[k]), k
    for block in deployed.modules():
        if isinstance(block, (ConvBN, RepMLPBlock, RepMLPNetUnit)):
            block.reparameterize()
    assert set(deployed.state_dict()) == set(state)


def test_training_mode_is_kept():
    model = RepMLPNet(TINY_ARCH).train()
    assert reparameterize_model(model).training


def test_deploy_state_dict_switches_a_training_model_when_loaded():
    """Any loader (MMEngine, MMSegInferencer) gets a working deploy model."""
    model, deployed = _deploy_pair(TINY_ARCH)
    fresh = RepMLPNet(TINY_ARCH, norm_cfg=NORM_CFG)
    fresh.load_state_dict(deployed.state_dict(), strict=True)
    assert fresh.deploy and is_deployed(fresh)
    fresh.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_outputs_equal(fresh(x), model(x))


def test_conversion_does_not_touch_the_global_random_stream():
    model, _ = _deploy_pair(TINY_ARCH)
    state = torch.get_rng_state()
    reparameterize_model(model)
    assert torch.equal(torch.get_rng_state(), state)
