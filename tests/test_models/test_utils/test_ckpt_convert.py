"""Released-checkpoint conversion, tested on dicts in the released layout."""
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmseg_repmlp import reparameterize_model
from mmseg_repmlp.checkpoint import (
    convert_official,
    detect_layout,
    infer_arch,
    load_backbone,
)
from mmseg_repmlp.models import ARCHS, RepMLPNet
from mmseg_repmlp.models.layers import RepMLPBlock

from ...conftest import TINY_ARCH, randomize_
from ..paper_reference import reference_fc3
from ..test_backbones.test_repmlpnet import RELEASED_PARAMS

#: Every key and shape of the released training-time checkpoints (see
#: tests/data/README.md).
KEYS = json.loads(
    (Path(__file__).parents[2] / 'data' /
     'released_checkpoint_keys.json').read_text())
REPO = Path(__file__).parents[3]


def released_state_dict(name, prefix=''):
    """Random tensors with every key and shape of the released file."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in KEYS[f'RepMLPNet-{name}']:
        if key.endswith('num_batches_tracked'):
            value = torch.tensor(7)
        elif key.endswith('running_var'):  # over four orders of magnitude
            value = 10**(torch.rand(shape, generator=gen) * 4 - 3)
        else:
            value = torch.randn(shape, generator=gen) * 0.02
        state[prefix + key] = value
    return state


@pytest.mark.parametrize('name', sorted(RELEASED_PARAMS))
def test_data_file_has_the_published_parameter_counts(name):
    """The data file against FACTS' published backbone parameter counts
    (no model involved)."""
    buffers = ('running_mean', 'running_var', 'num_batches_tracked')
    count = sum(math.prod(shape) for key, shape in KEYS[f'RepMLPNet-{name}']
                if not key.startswith(('head.', 'head_norm.'))
                and not key.endswith(buffers))
    assert count == RELEASED_PARAMS[name]


@pytest.mark.parametrize('name', sorted(ARCHS))
def test_convert_released_train_layout(name):
    state = released_state_dict(name, prefix='module.')
    converted = convert_official(state)
    assert not any(k.startswith(('head', 'module.')) for k in converted)
    assert infer_arch(converted) == ARCHS[name]
    with torch.device('meta'):
        model = RepMLPNet(name)
    load_backbone(model, converted)  # strict; meta params are replaced
    for key, value in model.state_dict().items():
        assert torch.equal(value, converted[key]), key


def test_wrong_variant_names_both():
    state = convert_official(released_state_dict('D256'))
    with torch.device('meta'):
        model = RepMLPNet('B256')
    with pytest.raises(ValueError, match='RepMLPNet-D256.*RepMLPNet-B256'):
        load_backbone(model, state)


def test_structure_mismatch_says_what_to_do():
    model = RepMLPNet(TINY_ARCH, deploy=True)
    with pytest.raises(ValueError, match='deploy=False'):
        load_backbone(model, RepMLPNet(TINY_ARCH).state_dict())
    with pytest.raises(ValueError, match='deploy=True'):
        load_backbone(RepMLPNet(TINY_ARCH),
                      reparameterize_model(RepMLPNet(TINY_ARCH)).state_dict())


def test_missing_key_is_an_error_and_loads_nothing():
    model = RepMLPNet(TINY_ARCH)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = randomize_(RepMLPNet(TINY_ARCH), 3).state_dict()
    del state['stages.1.1.prebn1.weight']
    with pytest.raises(ValueError, match='stages.1.1.prebn1.weight'):
        load_backbone(model, state)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


# The official conversion (DingXiaoH/RepMLP, repmlpnet.py, local_inject):
# each repmlp_block's fc3_bn and repconv{k} are deleted and its fc3 is
# rebuilt with a bias, one value per output row; nothing else changes.
_LOCAL_BRANCH = re.compile(r'\.repmlp_block\.(fc3_bn|repconv\d+\.(conv|bn))\.')
_FC3_WEIGHT = '.repmlp_block.fc3.weight'


def official_deploy_layout(train_layout):
    """Keys and shapes of the official deploy file, from the released
    training-time ``[[key, shape], ...]`` (the data file)."""
    layout = []
    for key, shape in train_layout:
        if _LOCAL_BRANCH.search(key):
            continue
        layout.append((key, list(shape)))
        if key.endswith(_FC3_WEIGHT):
            layout.append((key[:-len('weight')] + 'bias', shape[:1]))
    return layout


def full_deploy_layout(train_layout):
    """What this project's deploy backbone holds, from the same data file:
    the official deploy layout without the classifier, every conv's BN as
    a conv bias of the BN's size, and prebn2 folded into ffn_fc1."""
    layout = {}
    for key, shape in official_deploy_layout(train_layout):
        if key.startswith(('head.', 'head_norm.')) or '.prebn2.' in key:
            continue
        if '.bn.' in key:
            if key.endswith('.bn.weight'):
                layout[key[:-len('bn.weight')] + 'conv.bias'] = shape
            continue
        layout[key] = shape
    return layout


def official_deploy_state(model):
    """The official deploy file of a training-time ``model``, made without
    this project's fusion: each block's fc3 is the affine map of its
    branches as the paper reference computes it."""
    state = {k: v for k, v in model.state_dict().items()
             if not _LOCAL_BRANCH.search(k)}
    for name, module in model.named_modules():
        if isinstance(module, RepMLPBlock):
            weight, bias = reference_fc3(module)
            state[f'{name}.fc3.weight'], state[f'{name}.fc3.bias'] = \
                weight, bias
    return state


def _shapes(state):
    return {k: list(v.shape) for k, v in state.items()}


def test_official_deploy_layout_converts_to_full_deploy():
    torch.manual_seed(0)
    model = randomize_(RepMLPNet(TINY_ARCH)).eval()
    official = official_deploy_state(model)
    train_layout = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert _shapes(official) == dict(official_deploy_layout(train_layout))
    assert detect_layout(official) == 'official-deploy'
    converted = convert_official(
        {'module.' + k: v for k, v in
         [*official.items(), ('head.weight', torch.randn(10, 64))]})
    assert detect_layout(converted) == 'deploy'
    assert _shapes(converted) == full_deploy_layout(train_layout)
    for key in ('stages.1.1.repmlp_block.fc3.bias',
                'stages.0.0.repmlp_block.fc3.weight',
                'stages.2.0.repmlp_block.gp.fc1.weight',
                'stages.3.0.prebn1.running_var'):
        assert torch.equal(converted[key], official[key]), key
    deployed = RepMLPNet(TINY_ARCH, deploy=True).eval()
    load_backbone(deployed, converted)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for out, ref in zip(deployed(x), model(x)):
            scale = ref.abs().max()
            torch.testing.assert_close(out / scale, ref / scale, rtol=1e-5,
                                       atol=1e-5)


@pytest.mark.parametrize('name', sorted(ARCHS))
def test_official_deploy_layout_of_a_released_variant(name):
    """Every released variant's official deploy file, keys and shapes from
    the data file (values on the meta device: no memory, no time), converts
    to the deploy layout the data file implies, which the deploy backbone
    loads strictly."""
    train_layout = KEYS[f'RepMLPNet-{name}']
    official = {'module.' + k: torch.empty(shape, device='meta')
                for k, shape in official_deploy_layout(train_layout)}
    assert detect_layout({k[len('module.'):]: v
                          for k, v in official.items()}) == 'official-deploy'
    converted = convert_official(official)
    assert _shapes(converted) == full_deploy_layout(train_layout)
    with torch.device('meta'):
        deployed = RepMLPNet(name, deploy=True)
    assert _shapes(deployed.state_dict()) == _shapes(converted)
    load_backbone(deployed, converted)


def test_official_deploy_fold_by_hand():
    """Values through the conversion, on real tensors of a small model in
    the official deploy layout: fc3 and the Global Perceptron pass through;
    a conv-BN becomes ``w * g / sqrt(v + eps)``, ``b - m * g / sqrt(v +
    eps)`` with the official BN eps, 1e-5."""
    torch.manual_seed(0)
    official = official_deploy_state(randomize_(RepMLPNet(TINY_ARCH)))
    converted = convert_official(official)
    for prefix in ('conv_embedding', 'embeds.1', 'stages.2.0.ffn_block.ffn_fc2'):
        g, b, m, v = (official[f'{prefix}.bn.{n}'] for n in
                      ('weight', 'bias', 'running_mean', 'running_var'))
        scale = g / torch.sqrt(v + 1e-5)
        torch.testing.assert_close(
            converted[f'{prefix}.conv.weight'],
            official[f'{prefix}.conv.weight'] * scale[:, None, None, None])
        torch.testing.assert_close(converted[f'{prefix}.conv.bias'],
                                   b - m * scale)


def test_not_a_repmlpnet_state_dict():
    with pytest.raises(ValueError, match='Not a RepMLPNet'):
        convert_official({'conv1.weight': torch.zeros(1)})


def test_cli_converts_and_refuses_to_overwrite(tmp_path):
    src, dst = tmp_path / 'RepMLPNet-T-train.pth', tmp_path / 'out.pth'
    model = randomize_(RepMLPNet(TINY_ARCH))
    state = {'module.' + k: v for k, v in model.state_dict().items()}
    state['module.head.weight'] = torch.randn(10, 64)
    torch.save(state, src)
    cmd = [sys.executable, str(REPO / 'tools' / 'convert_official.py'),
           str(src), str(dst)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert 'custom RepMLPNet' in done.stdout
    converted = torch.load(dst, weights_only=True)
    assert set(converted) == set(model.state_dict())
    again = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert again.returncode != 0 and 'exists' in again.stderr
    assert torch.load(dst, weights_only=True).keys() == converted.keys()


def test_pretrained_init_cfg_loads_strictly(tmp_path):
    src = randomize_(RepMLPNet(TINY_ARCH), 5)
    path = tmp_path / 'pretrain.pth'
    state = {'module.' + k: v for k, v in src.state_dict().items()}
    state['module.head.weight'] = torch.randn(10, 64)
    torch.save(state, path)
    model = RepMLPNet(TINY_ARCH,
                      init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    for key, value in src.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    other = dict(TINY_ARCH, channels=(8, 16, 32, 32))
    wrong = RepMLPNet(other,
                      init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match='holds a custom RepMLPNet'):
        wrong.init_weights()
    missing = RepMLPNet(TINY_ARCH, init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'nope.pth')))
    with pytest.raises(FileNotFoundError):
        missing.init_weights()
