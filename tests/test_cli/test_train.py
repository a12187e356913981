"""tools/train.py's options, in process (no training run)."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper

from mmseg_repmlp.cli.train import build_config, parse_args

from ..conftest import CONFIG


def test_amp_option_asks_for_fp16_with_dynamic_loss_scale():
    cfg = build_config(parse_args([CONFIG, '--amp']))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.optim_wrapper.get('dtype') is None  # MMEngine's fp16
    plain = build_config(parse_args([CONFIG]))
    assert plain.optim_wrapper.type == 'OptimWrapper'


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine '
                    'without CUDA: there --amp is refused')
def test_amp_without_cuda_is_refused_by_mmengine():
    """MMEngine's AmpOptimWrapper trains only on CUDA (or NPU, MLU, MUSA):
    on a CPU, --amp stops as the run builds its optimizer, with MMEngine's
    message. (On a GPU, test_train_test.py trains with --amp.)"""
    cfg = build_config(parse_args([CONFIG, '--amp']))
    with pytest.raises(AssertionError, match='only available training on '
                       'gpu, npu, mlu or musa'):
        build_optim_wrapper(torch.nn.Linear(2, 2), cfg.optim_wrapper)
