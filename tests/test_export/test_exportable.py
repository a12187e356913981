"""Export-friendly module swaps."""
import torch
from torch import nn

from mmseg_repmlp.export import ExportableAdaptiveAvgPool2d, make_exportable


def test_exportable_adaptive_pool_equals_pytorch():
    for size in [(1, 1), (2, 3), (7, 11), (6, 6), (13, 29)]:
        x = torch.randn(2, 4, *size)
        for bins in [1, 2, 3, 6, (2, 5)]:
            torch.testing.assert_close(
                ExportableAdaptiveAvgPool2d(bins)(x),
                nn.AdaptiveAvgPool2d(bins)(x), rtol=1e-5, atol=1e-6)


def test_make_exportable_swaps_nested_adaptive_pools():
    model = nn.Sequential(nn.Conv2d(3, 4, 1),
                          nn.Sequential(nn.AdaptiveAvgPool2d((2, None))))
    x = torch.randn(1, 3, 5, 7)
    ref = model(x)
    assert make_exportable(model) is model
    assert isinstance(model[1][0], ExportableAdaptiveAvgPool2d)
    torch.testing.assert_close(model(x), ref)
