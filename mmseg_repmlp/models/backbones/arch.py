"""RepMLPNet architectures: the released variants, declared once as data."""
from dataclasses import asdict, dataclass, field
from typing import Dict, Tuple, Union

Window = Tuple[int, int]


@dataclass(frozen=True)
class RepMLPNetArch:
    """Sizes of a RepMLPNet.

    Args:
        channels (tuple[int]): Channels of each stage.
        depths (tuple[int]): Units in each stage.
        window_sizes (tuple): Window of each stage, an int (square) or
            ``(h, w)``. The window size is a property of pretrained ``fc3``
            weights: changing it changes their shapes.
        sharesets (tuple[int]): Sharesets of each stage (each divides its
            channels).
        kernels (tuple[int]): Local Perceptron kernel sizes. Default: (1, 3).
        reduction (int): Global Perceptron reduction. Default: 4.
        ffn_ratio (int): FFN expansion. Default: 4.
        patch_size (int): Stride of the stem. Default: 4.
    """
    channels: Tuple[int, ...]
    depths: Tuple[int, ...]
    window_sizes: Tuple[Window, ...]
    sharesets: Tuple[int, ...]
    kernels: Tuple[int, ...] = (1, 3)
    reduction: int = 4
    ffn_ratio: int = 4
    patch_size: int = 4
    name: str = field(default='custom', compare=False)

    def __post_init__(self) -> None:
        fix = lambda key, value: object.__setattr__(self, key, value)  # noqa
        fix('channels', tuple(int(c) for c in self.channels))
        fix('depths', tuple(int(d) for d in self.depths))
        fix('sharesets', tuple(int(s) for s in self.sharesets))
        fix('kernels', tuple(int(k) for k in self.kernels))
        fix('window_sizes', tuple(_as_window(w) for w in self.window_sizes))
        lengths = {len(self.channels), len(self.depths),
                   len(self.window_sizes), len(self.sharesets)}
        if len(lengths) != 1:
            raise ValueError(
                'channels, depths, window_sizes and sharesets need one entry '
                f'per stage; got {self.channels}, {self.depths}, '
                f'{self.window_sizes}, {self.sharesets}.')
        for c, s in zip(self.channels, self.sharesets):
            if s <= 0 or c % s:
                raise ValueError(f'sharesets {s} must divide channels {c}.')
        for c in self.channels:
            if c % self.reduction or c < self.reduction:
                raise ValueError(f'Global Perceptron reduction {self.reduction}'
                                 f' must divide channels {c}.')
        if any(k % 2 == 0 for k in self.kernels):
            raise ValueError(f'kernels must be odd; got {self.kernels}.')

    @property
    def num_stages(self) -> int:
        return len(self.channels)

    def strides(self) -> Tuple[int, ...]:
        """Output stride of each stage."""
        return tuple(self.patch_size * 2**i for i in range(self.num_stages))

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop('name')
        return out


def _as_window(size: Union[int, Window]) -> Window:
    if isinstance(size, int):
        return (size, size)
    h, w = size
    return (int(h), int(w))


def _released(name, channels, depths, windows, sharesets) -> RepMLPNetArch:
    return RepMLPNetArch(channels, depths, windows, sharesets, name=name)


_T, _B, _D = (64, 128, 256, 512), (96, 192, 384, 768), (80, 160, 320, 640)
_W224, _W256 = (56, 28, 14, 7), (64, 32, 16, 8)

#: The released ImageNet variants (official RepMLPNet).
ARCHS: Dict[str, RepMLPNetArch] = {
    a.name: a
    for a in (
        _released('T224', _T, (2, 2, 6, 2), _W224, (1, 4, 16, 128)),
        _released('B224', _B, (2, 2, 12, 2), _W224, (1, 4, 32, 128)),
        _released('T256', _T, (2, 2, 6, 2), _W256, (1, 4, 16, 128)),
        _released('B256', _B, (2, 2, 12, 2), _W256, (1, 4, 32, 128)),
        _released('D256', _D, (2, 2, 18, 2), _W256, (1, 4, 16, 128)),
        _released('L256', _B, (2, 2, 18, 2), _W256, (1, 4, 32, 256)),
    )
}


def get_arch(arch: Union[str, dict, RepMLPNetArch]) -> RepMLPNetArch:
    """Resolve a variant name, a dict of sizes or an arch to an arch."""
    if isinstance(arch, RepMLPNetArch):
        return arch
    if isinstance(arch, str):
        key = arch.upper()
        if key not in ARCHS:
            raise KeyError(f'Unknown RepMLPNet arch {arch!r}; valid names are '
                           f'{", ".join(ARCHS)} (or a dict of sizes).')
        return ARCHS[key]
    if isinstance(arch, dict):
        try:
            return RepMLPNetArch(**arch)
        except TypeError as err:
            raise TypeError(
                f'Bad RepMLPNet arch dict {arch}: {err}. Keys: channels, '
                'depths, window_sizes, sharesets and optionally kernels, '
                'reduction, ffn_ratio, patch_size.') from None
    raise TypeError(f'arch must be a name, a dict or a RepMLPNetArch; got '
                    f'{type(arch).__name__}.')


def match_released(arch: RepMLPNetArch) -> str:
    """Name of the released variant equal to ``arch``, or ``'custom'``."""
    for name, released in ARCHS.items():
        if released == arch:
            return name
    return 'custom'
