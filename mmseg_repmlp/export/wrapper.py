"""The module that is exported: a segmentor taking raw pixels and returning
logits or labels at the input size."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils.compare import logits_to_labels

OUTPUTS = ('logits', 'labels')
LABEL_DTYPES = {'int64': torch.int64, 'uint8': torch.uint8}


class OnnxSegmentor(nn.Module):
    """Raw pixels in, logits or labels at the input resolution out.

    The input is a float32 ``(N, 3, H, W)`` batch of 0..255 BGR pixels; the
    segmentor's data preprocessor (BGR to RGB, mean and std) is applied here,
    so the exported graph needs no preprocessing outside it.

    Args:
        segmentor (nn.Module): An MMSegmentation ``EncoderDecoder`` (deployed;
            see :func:`mmseg_repmlp.apis.init_model`). Used as it is: call
            :func:`~mmseg_repmlp.export.make_exportable` on a copy first for
            export.
        output (str): ``'logits'`` or ``'labels'``. Default: 'logits'.
        label_dtype (str): ``'int64'`` or ``'uint8'`` for labels.
            Default: 'int64'.
    """

    def __init__(self,
                 segmentor: nn.Module,
                 output: str = 'logits',
                 label_dtype: str = 'int64') -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f'output must be one of {OUTPUTS}; got '
                             f'{output!r}.')
        if label_dtype not in LABEL_DTYPES:
            raise ValueError(f'label_dtype must be one of '
                             f'{tuple(LABEL_DTYPES)}; got {label_dtype!r}.')
        head = segmentor.decode_head
        if label_dtype == 'uint8' and head.out_channels > 256:
            raise ValueError(f'{head.out_channels} classes do not fit in '
                             'uint8 labels; use int64.')
        self.segmentor = segmentor
        self.output = output
        self.label_dtype = LABEL_DTYPES[label_dtype]
        self.align_corners = bool(head.align_corners)
        self.threshold = getattr(head, 'threshold', None)
        pre = segmentor.data_preprocessor
        self.bgr_to_rgb = bool(getattr(pre, 'channel_conversion', False))
        if getattr(pre, '_enable_normalize', False):
            mean = pre.mean.detach().reshape(1, -1, 1, 1).float().clone()
            std = pre.std.detach().reshape(1, -1, 1, 1).float().clone()
        else:
            mean = torch.zeros(1, 1, 1, 1)
            std = torch.ones(1, 1, 1, 1)
        self.register_buffer('mean', mean, persistent=False)
        self.register_buffer('std', std, persistent=False)

    def logits(self, image: Tensor) -> Tensor:
        """``(N, C, H, W)`` logits: the decode head resized to the image."""
        x = image
        if self.bgr_to_rgb:
            x = x[:, [2, 1, 0]]
        x = (x - self.mean) / self.std
        seg = self.segmentor._forward(x)
        return F.interpolate(
            seg,
            size=image.shape[-2:],
            mode='bilinear',
            align_corners=self.align_corners)

    def forward(self, image: Tensor) -> Tensor:
        logits = self.logits(image)
        if self.output == 'logits':
            return logits
        return logits_to_labels(logits, self.threshold, self.label_dtype)
