"""init_model / inference_model / MMSegInferencer with both kinds of checkpoint."""
import glob

import numpy as np
import pytest
import torch

from mmseg_repmlp import is_deployed
from mmseg_repmlp.apis import inference_model, init_model
from mmseg_repmlp.utils import near_ties, reference_scale

from ..conftest import CONFIG


def _logits(model, image):
    result = inference_model(model, image)
    return result.seg_logits.data, result.pred_sem_seg.data


@pytest.fixture(scope='module')
def image(tiny_cityscapes):
    return sorted(glob.glob(str(
        tiny_cityscapes / 'leftImg8bit' / 'val' / '*' / '*.png')))[0]


def test_both_checkpoint_kinds_give_the_same_segmentation(spread, image):
    train_ckpt, deploy_ckpt = map(str, spread)
    train_form = init_model(CONFIG, train_ckpt, device='cpu', deploy=False)
    from_train = init_model(CONFIG, train_ckpt, device='cpu')
    from_deploy = init_model(CONFIG, deploy_ckpt, device='cpu')
    assert not is_deployed(train_form)
    assert is_deployed(from_train) and is_deployed(from_deploy)
    assert from_deploy.cfg.model.backbone.deploy is True
    assert from_deploy.dataset_meta['classes'][0] == 'road'
    ref_logits, ref_labels = _logits(train_form, image)
    scale = reference_scale(ref_logits)
    # A model with many classes and almost no pixels where float rounding
    # can pick the label: the labels are compared on more than 99% of them.
    assert len(ref_labels.unique()) >= 4
    decided = ~near_ties(ref_logits[None], 1e-5)[0]
    assert decided.float().mean() > 0.99
    for model in (from_train, from_deploy):
        logits, labels = _logits(model, image)
        torch.testing.assert_close(logits / scale, ref_logits / scale,
                                   rtol=1e-5, atol=1e-5)
        assert torch.equal(labels[0][decided], ref_labels[0][decided])


def test_mmseg_inferencer_takes_a_deploy_checkpoint(trained, image, tmp_path):
    from mmseg.apis import MMSegInferencer
    work, _ = trained
    ckpt = str(work / 'iter_4_deploy.pth')
    inferencer = MMSegInferencer(model=CONFIG, weights=ckpt, device='cpu')
    assert is_deployed(inferencer.model)
    pred = inferencer(image, return_datasamples=True).pred_sem_seg.data
    _, labels = _logits(init_model(CONFIG, ckpt, device='cpu'), image)
    assert torch.equal(pred, labels)


def test_mismatched_checkpoint_is_an_error_naming_keys(trained):
    work, _ = trained
    with pytest.raises(ValueError, match='num_classes') as err:
        init_model(CONFIG, str(work / 'iter_4_deploy.pth'), device='cpu',
                   cfg_options={'model.decode_head.num_classes': 7})
    assert 'decode_head.conv_seg.weight' in str(err.value)
    with pytest.raises(ValueError, match='deploy=False'):
        init_model(CONFIG, str(work / 'iter_4_deploy.pth'), device='cpu',
                   deploy=False)


@pytest.mark.parametrize('kind', ['gray', 'bgra', 'uint16'])
def test_inference_reads_other_image_kinds(trained, image, tmp_path, kind):
    import cv2
    work, _ = trained
    model = init_model(CONFIG, str(work / 'iter_4_deploy.pth'), device='cpu')
    bgr = cv2.imread(image)
    variant = {
        'gray': cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
        'bgra': cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
        'uint16': bgr.astype(np.uint16) * 257,
    }[kind]
    path = tmp_path / f'{kind}.png'
    cv2.imwrite(str(path), variant)
    result = inference_model(model, str(path))
    assert result.pred_sem_seg.data.shape[-2:] == bgr.shape[:2]
    if kind != 'gray':  # same pixels as the 8-bit BGR image
        ref = inference_model(model, image)
        assert torch.equal(result.pred_sem_seg.data, ref.pred_sem_seg.data)


def test_unreadable_images_have_clear_errors(tmp_path, image):
    from mmseg_repmlp.apis import read_image
    not_image = tmp_path / 'notes.png'
    not_image.write_text('not an image')
    with pytest.raises(ValueError, match='not an image OpenCV can read'):
        read_image(str(not_image))
    data = open(image, 'rb').read()
    cut = tmp_path / 'cut.png'
    cut.write_bytes(data[:len(data) * 2 // 3])
    with pytest.raises(ValueError, match='truncated'):
        read_image(str(cut))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        read_image(str(tmp_path / 'missing.png'))


def test_tiny_image_is_segmented(trained, tmp_path):
    """Smaller than one window, even than the stem's stride: padded."""
    import cv2
    work, _ = trained
    model = init_model(CONFIG, str(work / 'iter_4_deploy.pth'), device='cpu')
    path = tmp_path / 'tiny.png'
    cv2.imwrite(str(path), np.full((3, 5, 3), 127, np.uint8))
    assert inference_model(model, str(path)).pred_sem_seg.data.shape[-2:] \
        == (3, 5)


@pytest.mark.skipif(torch.cuda.is_available(), reason='a CPU-only machine')
def test_init_model_picks_the_cpu_without_cuda():
    model = init_model(CONFIG)  # MMSegmentation's default would be cuda:0
    assert next(model.parameters()).device.type == 'cpu'
    # No dataset_meta in a checkpoint: the config's dataset's classes.
    assert model.dataset_meta['classes'][0] == 'road'
    with pytest.raises(ValueError, match="use device='cpu'"):
        init_model(CONFIG, device='cuda:0')
