"""ClassWeightedCrossEntropyLoss: MMSegmentation 1.2.2's class-weighted
cross-entropy stops on ignored pixels; the fixed one is torch's weighted
mean over the labelled pixels."""
import pytest
import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss
from mmseg.registry import MODELS

import mmseg_repmlp  # noqa: F401  (registers the loss)
from mmseg_repmlp.models.losses import ClassWeightedCrossEntropyLoss

IGNORE = 255
CLASS_WEIGHT = [0.5, 2.0, 7.0, 1.0]


def _batch(seed=0):
    """Logits (2, 4, 5, 6) and labels with a row and a corner ignored."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 4, 5, 6, generator=gen)
    labels = torch.randint(0, 4, (2, 5, 6), generator=gen)
    labels[0, 1] = IGNORE
    labels[1, 3:, 4:] = IGNORE
    return logits, labels


def _build(**kwargs):
    return MODELS.build(dict(type='ClassWeightedCrossEntropyLoss', **kwargs))


@pytest.mark.parametrize('avg_non_ignore', [True, False])
def test_class_weighted_mean_over_labelled_pixels(avg_non_ignore):
    logits, labels = _batch()
    loss = _build(class_weight=CLASS_WEIGHT, loss_weight=0.4,
                  avg_non_ignore=avg_non_ignore)
    expected = 0.4 * F.cross_entropy(
        logits, labels, weight=torch.tensor(CLASS_WEIGHT),
        ignore_index=IGNORE)
    torch.testing.assert_close(
        loss(logits, labels, ignore_index=IGNORE), expected,
        rtol=1e-6, atol=1e-7)


def test_mmsegmentation_loss_still_fails_on_ignored_pixels():
    """The bug the subclass exists for: if this starts passing, the
    installed MMSegmentation is fixed and the subclass can go."""
    logits, labels = _batch()
    with pytest.raises(IndexError, match='out of bounds'):
        CrossEntropyLoss(class_weight=CLASS_WEIGHT, avg_non_ignore=True)(
            logits, labels, ignore_index=IGNORE)


def test_pixel_weights_and_gradient():
    """A pixel weight map (what OHEMPixelSampler gives) multiplies the
    per-pixel losses; the denominator stays the labelled pixels' class
    weights, as in MMSegmentation's unweighted mean."""
    logits, labels = _batch(1)
    logits.requires_grad_(True)
    pixel_weight = (torch.rand(labels.shape,
                               generator=torch.Generator().manual_seed(2))
                    > 0.5).float()
    loss = _build(class_weight=CLASS_WEIGHT, avg_non_ignore=True)(
        logits, labels, weight=pixel_weight, ignore_index=IGNORE)
    per_pixel = F.cross_entropy(logits, labels,
                                weight=torch.tensor(CLASS_WEIGHT),
                                ignore_index=IGNORE, reduction='none')
    labelled = labels != IGNORE
    denominator = torch.tensor(CLASS_WEIGHT)[labels[labelled]].sum()
    torch.testing.assert_close(
        loss, (per_pixel * pixel_weight).sum() / denominator,
        rtol=1e-5, atol=1e-7)
    loss.backward()
    assert logits.grad.abs().sum() > 0
    # Ignored pixels get no gradient.
    assert logits.grad[0, :, 1].abs().max() == 0


def test_without_class_weight_it_is_mmsegmentation_loss():
    logits, labels = _batch(3)
    for avg_non_ignore in (True, False):
        ours = _build(avg_non_ignore=avg_non_ignore)
        theirs = CrossEntropyLoss(avg_non_ignore=avg_non_ignore)
        assert ours.loss_name == theirs.loss_name == 'loss_ce'
        for reduction in ('mean', 'sum', 'none'):
            torch.testing.assert_close(
                ours(logits, labels, ignore_index=IGNORE,
                     reduction_override=reduction),
                theirs(logits, labels, ignore_index=IGNORE,
                       reduction_override=reduction))


def test_sigmoid_and_mask_variants_are_refused():
    for flag in ('use_sigmoid', 'use_mask'):
        with pytest.raises(ValueError, match='CrossEntropyLoss'):
            ClassWeightedCrossEntropyLoss(**{flag: True})
