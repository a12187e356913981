"""Cross-entropy with class weights that works on maps with ignored pixels.

MMSegmentation 1.2.2's ``CrossEntropyLoss(class_weight=...)`` cannot train
on data with ignored pixels (``ignore_index``, 255 in Cityscapes): for the
``'mean'`` reduction, ``mmseg.models.losses.cross_entropy`` computes the
denominator as ``torch.stack([class_weight[cls] for cls in label])``, which
indexes the class weights with every label, 255 included, and stops with
``IndexError: index 255 is out of bounds for dimension 0 with size 19``
(open-mmlab/mmsegmentation#3734). Only the denominator is wrong: the
per-pixel losses come from ``F.cross_entropy(weight=class_weight,
ignore_index=...)`` and are right.

:class:`ClassWeightedCrossEntropyLoss` is that loss with the denominator
computed over the labelled pixels only: the class-weighted mean is
``sum_i w[y_i] * l_i / sum_i w[y_i]`` over the pixels that are not ignored,
which is what ``F.cross_entropy(weight=w, ignore_index=...)`` gives. Every
other case (no class weights, another reduction, an explicit
``avg_factor``) is MMSegmentation's own function, unchanged.
"""
from typing import Optional

from mmseg.models.losses import CrossEntropyLoss
from mmseg.models.losses.cross_entropy_loss import cross_entropy
from mmseg.registry import MODELS
from torch import Tensor


def class_weighted_cross_entropy(pred: Tensor,
                                 label: Tensor,
                                 weight: Optional[Tensor] = None,
                                 class_weight: Optional[Tensor] = None,
                                 reduction: str = 'mean',
                                 avg_factor: Optional[float] = None,
                                 ignore_index: int = -100,
                                 avg_non_ignore: bool = False) -> Tensor:
    """``mmseg.models.losses.cross_entropy`` with a class-weighted mean
    whose denominator skips ignored pixels (see the module docstring).

    With class weights, ignored pixels never count in the mean, whatever
    ``avg_non_ignore`` says: a class weight of an ignored pixel does not
    exist.
    """
    if (class_weight is not None and reduction == 'mean'
            and avg_factor is None):
        labelled = label != ignore_index
        avg_factor = class_weight[label[labelled]].sum()
    return cross_entropy(
        pred,
        label,
        weight,
        class_weight=class_weight,
        reduction=reduction,
        avg_factor=avg_factor,
        ignore_index=ignore_index,
        avg_non_ignore=avg_non_ignore)


@MODELS.register_module()
class ClassWeightedCrossEntropyLoss(CrossEntropyLoss):
    """MMSegmentation's ``CrossEntropyLoss`` whose ``class_weight`` works
    with ignored pixels.

    Same arguments and loss name (``loss_ce``) as ``CrossEntropyLoss``; the
    softmax cross-entropy uses :func:`class_weighted_cross_entropy`. Sigmoid
    and mask variants are not covered by the fix and are refused.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.use_sigmoid or self.use_mask:
            raise ValueError(
                'ClassWeightedCrossEntropyLoss fixes the softmax '
                'cross-entropy only; for use_sigmoid=True or use_mask=True '
                'use MMSegmentation\'s CrossEntropyLoss')
        self.cls_criterion = class_weighted_cross_entropy


__all__ = ['ClassWeightedCrossEntropyLoss', 'class_weighted_cross_entropy']
