"""onnxruntime input conversion."""
import numpy as np
import pytest

from mmseg_repmlp.export import to_input_array


def test_an_image_becomes_a_batch_of_one():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)  # H, W, BGR
    batch = to_input_array(img)
    assert batch.shape == (1, 3, 2, 3) and batch.dtype == np.float32
    assert batch.flags['C_CONTIGUOUS']
    np.testing.assert_array_equal(batch[0], img.transpose(2, 0, 1))
    np.testing.assert_array_equal(to_input_array(batch), batch)


@pytest.mark.parametrize('shape', [(4, 5), (4, 5, 4), (1, 4, 5, 5)])
def test_other_shapes_are_refused(shape):
    with pytest.raises(ValueError, match='3'):
        to_input_array(np.zeros(shape))
