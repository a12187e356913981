"""check_size: the one default size models are compared at."""
from mmengine.config import Config
from torch import nn

from mmseg_repmlp.utils.sizes import DEFAULT_CHECK_SIZE, check_size

from ..conftest import CONFIG


def test_the_data_preprocessors_size_else_512():
    cfg = Config.fromfile(CONFIG)
    size = tuple(cfg.model.data_preprocessor.size)
    assert check_size(cfg) == size != DEFAULT_CHECK_SIZE
    cfg.model.data_preprocessor.size = None
    assert check_size(cfg) == DEFAULT_CHECK_SIZE == (512, 512)
    del cfg.model['data_preprocessor']
    assert check_size(cfg) == (512, 512)


def test_a_model_from_init_model_is_read_through_its_cfg():
    model = nn.Module()
    model.cfg = Config(dict(model=dict(data_preprocessor=dict(
        size=[64, 96]))))
    assert check_size(model) == (64, 96)
