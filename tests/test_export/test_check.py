"""Checking a graph against PyTorch: inputs and the report line."""
import cv2
import numpy as np
import pytest

from mmseg_repmlp.export import check_image, format_check, second_check_shape


def test_second_check_size_is_odd_and_smaller():
    assert second_check_shape((128, 256)) == (97, 193)
    assert second_check_shape((8, 8)) == (21, 21)
    assert second_check_shape((21, 21)) == (23, 21)


def test_random_check_image_is_reproducible():
    img = check_image(None, (5, 7))
    assert img.shape == (5, 7, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, check_image(None, (5, 7)))
    assert not np.array_equal(img, check_image(None, (5, 7), seed=1))


def test_check_image_reads_with_the_one_image_reader(tmp_path):
    gray = np.arange(4 * 6, dtype=np.uint16).reshape(4, 6) * 2570
    path = tmp_path / 'gray16.png'
    cv2.imwrite(str(path), gray)
    img = check_image(str(path), (4, 6))
    # read_image: 16 bits scaled (not shifted) to 8, grey to BGR.
    assert img.shape == (4, 6, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[..., 0], np.arange(24).reshape(4, 6)
                                  * 10)
    assert check_image(str(path), (8, 3)).shape == (8, 3, 3)
    cut = tmp_path / 'cut.png'
    cut.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match='truncated'):
        check_image(str(cut), (4, 6))
    with pytest.raises(FileNotFoundError):
        check_image(str(tmp_path / 'missing.png'), (4, 6))


def test_report_line():
    result = dict(shape=(97, 193), batch=2, rel_diff=3.2e-7,
                  equal_fraction=1.0, identical=True, near_ties=5)
    assert format_check(result, 'a.png', 1e-4) == (
        'a.png at 97x193, batch 2: max relative logit difference 3.20e-07 '
        '(tolerance 0.0001); label maps identical (fraction of equal '
        'pixels 1.000000; 5 near-tie pixels not compared)')
    result.update(rel_diff=None, equal_fraction=0.5, identical=False,
                  near_ties=0)
    line = format_check(result, 'random image', 1e-4)
    assert 'n/a (labels graph)' in line and 'DIFFER' in line
    assert line.endswith('pixels 0.500000)')
