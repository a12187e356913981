import pytest

from ..conftest import CONFIG


@pytest.fixture(scope='session')
def deployed(trained):
    """The deploy segmentor of the 4-iteration run, on the CPU."""
    from mmseg_repmlp.apis import init_model
    work, _ = trained
    return init_model(CONFIG, str(work / 'iter_4_deploy.pth'), device='cpu')
