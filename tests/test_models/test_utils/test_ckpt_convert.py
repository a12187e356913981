"""Released-checkpoint conversion, tested on dicts in the released layout."""
import json
import os
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
        elif key.endswith('running_var'):
            value = torch.rand(shape, generator=gen) + 0.5
        else:
            value = torch.randn(shape, generator=gen) * 0.02
        state[prefix + key] = value
    return state


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


def _official_deploy_state(model):
    """What the official conversion writes: only fc3 fused."""
    import copy
    official = copy.deepcopy(model)
    for m in official.modules():
        if isinstance(m, RepMLPBlock):
            m.reparameterize()
    state = {'module.' + k: v for k, v in official.state_dict().items()}
    state['module.head.weight'] = torch.randn(10, 64)
    return state


def test_official_deploy_layout_converts_to_full_deploy():
    torch.manual_seed(0)
    model = randomize_(RepMLPNet(TINY_ARCH)).eval()
    official = _official_deploy_state(model)
    assert detect_layout({k[7:]: v for k, v in official.items()}) == \
        'official-deploy'
    converted = convert_official(official)
    assert detect_layout(converted) == 'deploy'
    deployed = RepMLPNet(TINY_ARCH, deploy=True).eval()
    load_backbone(deployed, converted)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for out, ref in zip(deployed(x), model(x)):
            torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_official_deploy_layout_of_a_released_variant():
    state = released_state_dict('T224')
    with torch.device('meta'):
        model = RepMLPNet('T224')
    load_backbone(model, convert_official(state))
    official = _official_deploy_state(model)
    with torch.device('meta'):
        deployed = RepMLPNet('T224', deploy=True)
    load_backbone(deployed, convert_official(official))


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
