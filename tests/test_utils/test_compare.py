"""mmseg_repmlp.utils.compare: the one way outputs are compared."""
import numpy as np
import pytest
import torch

from mmseg_repmlp.utils import (
    ZERO_GUARD,
    label_agreement,
    logits_to_labels,
    max_relative_difference,
    near_ties,
    reference_scale,
)


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((2, 5, 4, 6)).astype(np.float32)
    out = ref + 1e-3 * rng.standard_normal(ref.shape).astype(np.float32)
    return out, ref


def test_relative_to_the_largest_reference_magnitude():
    out, ref = _pair()
    expected = np.abs(out - ref).max() / np.abs(ref).max()
    assert max_relative_difference(out, ref) == pytest.approx(expected)
    got = max_relative_difference(torch.from_numpy(out), torch.from_numpy(ref))
    assert got == pytest.approx(expected)
    # Either kind against the other, and the reference is the divisor.
    assert max_relative_difference(torch.from_numpy(out), ref) == \
        pytest.approx(expected)
    assert max_relative_difference(ref, 2 * ref) == pytest.approx(0.5)


@pytest.mark.parametrize('kind', [np.zeros, torch.zeros])
def test_all_zero_reference_does_not_divide_by_zero(kind):
    zeros = kind((1, 3, 4, 4))
    assert max_relative_difference(zeros, zeros) == 0.0
    off = max_relative_difference(zeros + 1e-3, zeros)
    assert np.isfinite(off) and off == pytest.approx(1e-3 / ZERO_GUARD)
    assert reference_scale(zeros) == ZERO_GUARD
    assert near_ties(zeros, 1e-4).all()  # every label is a coin toss


def test_nan_fails_every_tolerance():
    ref = torch.ones(4)
    out = ref.clone()
    out[1] = float('nan')
    assert not max_relative_difference(out, ref) <= 1.0


def test_integer_and_half_inputs():
    # In uint8, 0 - 1 would wrap around to 255.
    assert max_relative_difference(np.zeros(3, np.uint8),
                                   np.ones(3, np.uint8)) == 1.0
    assert max_relative_difference(
        torch.tensor([1, 2], dtype=torch.uint8),
        torch.tensor([2, 1], dtype=torch.uint8)) == 0.5
    ref = torch.tensor([1.0, -4.0])
    assert max_relative_difference(ref.half(), ref) == 0.0
    assert max_relative_difference(ref.bfloat16() + 1, ref) == 0.25


def test_shapes_must_match():
    with pytest.raises(ValueError, match='shapes'):
        max_relative_difference(np.zeros((2, 3)), np.zeros((3, 2)))


def _tied_logits():
    """(1, 3, 1, 3) logits: pixel 0 decided, pixel 1 a near tie, pixel 2 an
    exact tie."""
    logits = np.zeros((1, 3, 1, 3), np.float32)
    logits[0, :, 0, 0] = [10.0, 1.0, 0.0]
    logits[0, :, 0, 1] = [5.0, 5.0 + 1e-5, 0.0]
    logits[0, :, 0, 2] = [-1.0, 3.0, 3.0]
    return logits


def test_near_ties_torch_and_numpy():
    logits = _tied_logits()
    ties = near_ties(logits, 1e-4)
    assert isinstance(ties, np.ndarray) and ties.shape == (1, 1, 3)
    assert ties.tolist() == [[[False, True, True]]]
    torch_ties = near_ties(torch.from_numpy(logits), 1e-4)
    assert isinstance(torch_ties, torch.Tensor)
    assert torch_ties.tolist() == ties.tolist()
    # The margin is relative to the largest logit: 1e-5 of 10 is decided
    # at a tolerance of 1e-7.
    assert not near_ties(logits, 1e-7)[0, 0, 1]


def test_near_ties_single_class_head():
    logits = np.array([3.0, 1e-6, -2.0], np.float32).reshape(1, 1, 1, 3)
    assert near_ties(logits, 1e-4).tolist() == [[[False, True, False]]]


def test_labels_argmax_over_classes():
    logits = _tied_logits()
    assert logits_to_labels(logits).tolist() == [[[0, 1, 1]]]
    labels = logits_to_labels(torch.from_numpy(logits))
    assert labels.dtype == torch.int64 and labels.tolist() == [[[0, 1, 1]]]
    assert logits_to_labels(logits, dtype=np.uint8).dtype == np.uint8


def test_labels_single_class_head_uses_the_threshold():
    # sigmoid: 0.27, 0.4, 0.6
    logits = np.array([-1.0, -0.4, 0.4], np.float32).reshape(1, 1, 1, 3)
    for array in (logits, torch.from_numpy(logits)):
        # None is MMSegmentation's default for a one-class head, 0.3.
        assert logits_to_labels(array).tolist() == [[[0, 1, 1]]]
        assert logits_to_labels(array, 0.3).tolist() == [[[0, 1, 1]]]
        assert logits_to_labels(array, 0.5).tolist() == [[[0, 0, 1]]]
    labels = logits_to_labels(torch.from_numpy(logits), 0.5, torch.uint8)
    assert labels.dtype == torch.uint8


def test_label_agreement_leaves_out_near_ties():
    logits = _tied_logits()
    ref = logits_to_labels(logits)
    other = ref.copy()
    other[0, 0, 1] = 0  # differs at the near tie only
    agree = label_agreement(other, ref, logits, 1e-4)
    assert agree.identical and agree.equal_fraction == 1.0
    assert agree.near_ties == 2
    other[0, 0, 0] = 2  # and at the decided pixel
    agree = label_agreement(torch.from_numpy(other), torch.from_numpy(ref),
                            torch.from_numpy(logits), 1e-4)
    assert not agree.identical and agree.equal_fraction == 0.0
    # No decided pixel at all: nothing disagrees.
    zeros = np.zeros_like(logits)
    assert label_agreement(other, ref, zeros, 1e-4).identical
