"""tools/reparam.py --verify IMAGE, on stand-in models (no training run)."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

from mmseg_repmlp.cli import reparam


def _sample(logits):
    return SimpleNamespace(
        seg_logits=SimpleNamespace(data=logits),
        pred_sem_seg=SimpleNamespace(data=logits.argmax(0, keepdim=True)))


def _verify(monkeypatch, ref_logits, deploy_logits):
    models = {'train': ref_logits, 'deploy': deploy_logits}
    # The names the tool looks up (imported into its module).
    monkeypatch.setattr(reparam, 'init_model', lambda *args, **kwargs: 'train')
    monkeypatch.setattr(reparam, 'reparameterize_model',
                        lambda model: 'deploy')
    monkeypatch.setattr(reparam, 'inference_model',
                        lambda model, image: _sample(models[model]))
    reparam.verify_on_image(Config(), 'iter.pth', 'image.png', 1e-4)


def test_all_zero_logits_verify_without_dividing_by_zero(monkeypatch,
                                                         capsys):
    # A zero-initialised decode head gives all-zero logits in both forms:
    # they agree, and verification must say so instead of 0 / 0 = nan.
    zeros = torch.zeros(3, 4, 5)
    _verify(monkeypatch, zeros, zeros.clone())
    out = capsys.readouterr().out
    assert 'max relative logit difference 0.00e+00' in out
    assert 'label maps identical' in out


def test_a_real_difference_still_fails(monkeypatch, capsys):
    ref = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0))
    with pytest.raises(RuntimeError, match='does not reproduce'):
        _verify(monkeypatch, ref, ref + 0.1)
    assert 'DIFFER' not in capsys.readouterr().out  # logits off, labels not
