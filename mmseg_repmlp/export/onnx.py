"""ONNX export of a deployed RepMLPNet segmentor.

The exported graph takes **raw pixels**: a float32 ``(N, 3, H, W)`` tensor of
0..255 values in the channel order MMSegmentation loads images in (BGR, as
``cv2.imread`` / ``mmcv.imread`` give them). The model's data preprocessor is
baked in: ``bgr_to_rgb`` (if set) and ``(x - mean) / std``. Its output is
either

* ``logits``: ``(N, num_classes, H, W)`` float32, the decode head's output
  bilinearly resized to the input size (what ``EncoderDecoder.encode_decode``
  returns in whole-image mode), or
* ``labels``: ``(N, H, W)`` label map (``argmax`` of those logits; int64 or
  uint8).

Exporter: the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``;
deprecated but still shipped in torch 2.13). The backbone pads with Python
ints taken from tensor shapes (``-H % window``) and branches on them
(``if pad_h == 0 and pad_w == 0``); UPerNet's PPM uses adaptive pooling.

* TorchScript tracer: shape ints are traced, so the padding amounts become
  ONNX Shape/Mod/Pad/Slice nodes, but Python branches are baked in for the
  example input, and adaptive pooling of a dynamic size is refused
  ("input size not accessible").
* ``dynamo=True`` (the default; needs ``onnxscript``): on the unmodified
  model it turned those branches into guards that the ONNX graph does not
  keep: the "dynamic" graph gave 6 % wrong logits at 128x256 and failed at
  other sizes, without any error at export.

Both problems are solved here, not in the model: adaptive pooling is
replaced by an exact, size-generic equivalent
(:class:`ExportableAdaptiveAvgPool2d`) and a dynamic graph is traced at a
size where every padding branch is taken (:func:`padded_trace_shape`; the
traced pad is 0 where none is needed). With those, both exporters give a
correct dynamic graph (TorchScript checked from 1x1 to 255x511 and batch
1 to 3, dynamo from 7x9 to 128x256), but on
2 CPU cores the TorchScript exporter takes about 5 s for the demo model and
the dynamo one about 150 s; hence TorchScript. Every export is checked in
onnxruntime, at a second size and batch when dynamic.

Opset: 17 by default. Dynamic ``Pad``/``Slice``/``Resize`` need >= 11; 17 is
supported by every current runtime (onnxruntime >= 1.12, TensorRT >= 8.5,
OpenVINO) and the graph needs no newer operator; the TorchScript exporter
stops at 20.
"""
import math
import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils.fileio import atomic_path, refuse_to_overwrite
from ..deploy import near_ties

DEFAULT_OPSET = 17
MIN_OPSET = 11
MAX_OPSET = 20  # the TorchScript exporter's newest opset in torch 2.13
OUTPUTS = ('logits', 'labels')
LABEL_DTYPES = {'int64': torch.int64, 'uint8': torch.uint8}
INPUT_NAME = 'image'


def _require_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise ImportError(
            f'ONNX export needs onnx and onnxruntime ({err}); install them '
            'with `pip install -r requirements/tests.txt` or '
            '`pip install onnx onnxruntime`.') from None
    return onnx, onnxruntime


def _threshold(head: nn.Module) -> float:
    """A binary (one-channel) head's threshold, as MMSegmentation sets it."""
    threshold = getattr(head, 'threshold', None)
    return 0.3 if threshold is None else float(threshold)


# --- export-friendly modules ----------------------------------------------
def _pool_matrix(size, out: int, dtype: torch.dtype,
                 device: torch.device) -> Tensor:
    """``(out, size)`` matrix averaging the bins of adaptive pooling.

    Bin ``i`` covers ``[floor(i * size / out), ceil((i + 1) * size / out))``
    as in PyTorch. ``size`` may be a size traced from a tensor shape, so the
    matrix (and the graph) follows the input size.
    """
    idx = torch.arange(out, device=device)
    start = torch.div(idx * size, out, rounding_mode='floor')
    end = torch.div((idx + 1) * size + out - 1, out, rounding_mode='floor')
    pos = torch.arange(size, device=device)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return inside.to(dtype) / (end - start).to(dtype)[:, None]


class ExportableAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` for any input size in an exported graph.

    The TorchScript exporter can only write adaptive pooling for a static
    input size that the output size divides (UPerNet's PPM pools the 1/32
    map to 1, 2, 3 and 6 bins). Here each axis is averaged with a bin
    matrix, ``A_h @ x @ A_w^T``: the same bins, rounding aside.
    """

    def __init__(self, output_size) -> None:
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.output_size = tuple(output_size)

    def forward(self, x: Tensor) -> Tensor:
        out_h, out_w = self.output_size
        height, width = x.shape[-2:]
        if out_h is None:
            out_h = height
        if out_w is None:
            out_w = width
        if out_h == 1 and out_w == 1:
            return x.mean(dim=(-2, -1), keepdim=True)
        rows = _pool_matrix(height, out_h, x.dtype, x.device)
        cols = _pool_matrix(width, out_w, x.dtype, x.device)
        return torch.matmul(torch.matmul(rows, x), cols.t())


def make_exportable(model: nn.Module) -> nn.Module:
    """Swap, in place, modules the exporter cannot write for any input size.

    ``nn.AdaptiveAvgPool2d`` becomes :class:`ExportableAdaptiveAvgPool2d`;
    SyncBN becomes BN (identical in eval mode).
    """
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(model)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.AdaptiveAvgPool2d):
                setattr(module, child_name,
                        ExportableAdaptiveAvgPool2d(child.output_size))
    return model


class OnnxSegmentor(nn.Module):
    """Raw pixels in, logits or labels at the input resolution out.

    Args:
        segmentor (nn.Module): An MMSegmentation ``EncoderDecoder`` (deployed;
            see :func:`mmseg_repmlp.apis.init_model`). Used as it is: call
            :func:`make_exportable` on a copy first for export.
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
        self.threshold = _threshold(head)
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
        if logits.shape[1] == 1:  # binary head: sigmoid and threshold
            labels = (logits.sigmoid() > self.threshold)[:, 0]
        else:
            labels = logits.argmax(dim=1)
        return labels.to(self.label_dtype)


# --- trace size -----------------------------------------------------------
def _needs_pad(size: int, multiple: int) -> bool:
    return multiple > 1 and size % multiple != 0


def _pads_everywhere(size: int, patch: int,
                     windows: Sequence[Sequence[int]]) -> bool:
    """Whether an input side of ``size`` is padded by the stem, every
    downsampling embed and every RepMLP block with a window side > 1.

    ``windows[i]`` lists stage ``i``'s window sides along this axis.
    """
    if patch > 1 and not _needs_pad(size, patch):
        return False
    size = math.ceil(size / patch)
    for i, stage in enumerate(windows):
        if i > 0:
            if not _needs_pad(size, 2):
                return False
            size = math.ceil(size / 2)
        if any(w > 1 and not _needs_pad(size, w) for w in stage):
            return False
    return True


def padded_trace_shape(model: nn.Module, shape: Tuple[int, int],
                       search: int = 4096) -> Tuple[int, int]:
    """The smallest ``(H', W') >= shape`` at which every padding is taken.

    The backbone pads maps that are not a whole number of windows and skips
    the padding otherwise; the tracer bakes that Python branch into the
    graph. Traced at a size where every pad is taken, the graph pads by
    ``-H % window`` computed in the graph, which is 0 (a no-op) where no
    padding is needed, so it is right for every size.

    Raises:
        ValueError: When the backbone is not a RepMLPNet or no such size
            exists within ``search`` pixels.
    """
    from ..models import RepMLPNet
    backbone = getattr(model, 'backbone', None)
    if not isinstance(backbone, RepMLPNet):
        raise ValueError('Dynamic export needs a RepMLPNet backbone; got '
                         f'{type(backbone).__name__}. Export a fixed size '
                         '(without --dynamic).')
    patch = backbone.arch.patch_size
    windows = [[unit.repmlp_block.window for unit in stage]
               for stage in backbone.stages]
    result = []
    for axis, side in enumerate(shape):
        axis_windows = [[w[axis] for w in stage] for stage in windows]
        for candidate in range(side, side + search):
            if _pads_everywhere(candidate, patch, axis_windows):
                result.append(candidate)
                break
        else:
            raise ValueError(
                'No input size near {} pads every RepMLP block, so the '
                'dynamic graph cannot be traced; export a fixed size (without '
                '--dynamic).'.format(shape))
    return tuple(result)


def second_check_shape(shape: Tuple[int, int]) -> Tuple[int, int]:
    """A size unlike ``shape`` (about 3/4 of it, odd, so no stride or
    window divides it) to check that a dynamic graph generalises."""
    h, w = shape
    h2, w2 = max(h * 3 // 4, 20) | 1, max(w * 3 // 4, 20) | 1
    if (h2, w2) == (h, w):
        h2 += 2
    return h2, w2


# --- export ---------------------------------------------------------------
def export_onnx(model: nn.Module,
                path: str,
                shape: Tuple[int, int],
                dynamic: bool = False,
                output: str = 'logits',
                opset: int = DEFAULT_OPSET,
                label_dtype: str = 'int64') -> Tuple[int, int]:
    """Write ``model`` (a deployed segmentor, left unchanged) to ``path``.

    Without ``dynamic`` the graph takes ``(1, 3, H, W)`` images of
    ``shape``. With it, batch, height and width are dynamic
    (``batch``, ``height``, ``width``); the graph is then traced at
    :func:`padded_trace_shape`. No check is made here: see
    :func:`check_onnx` and :func:`export_segmentor`.

    Returns:
        tuple[int, int]: The size the graph was traced at.
    """
    import copy
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f'opset must be in [{MIN_OPSET}, {MAX_OPSET}] '
                         f'(dynamic Pad/Resize need {MIN_OPSET}; the '
                         f'TorchScript exporter stops at {MAX_OPSET}); got '
                         f'{opset}.')
    trace_shape = padded_trace_shape(model, shape) if dynamic else tuple(shape)
    model = make_exportable(copy.deepcopy(model).cpu().eval())
    wrapper = OnnxSegmentor(model, output, label_dtype).eval()
    dummy = torch.rand(1, 3, *trace_shape) * 255
    dynamic_axes = None
    if dynamic:
        axes = {0: 'batch', 1: None, 2: 'height', 3: 'width'}
        out_axes = ({0: 'batch', 2: 'height', 3: 'width'} if output ==
                    'logits' else {0: 'batch', 1: 'height', 2: 'width'})
        dynamic_axes = {
            INPUT_NAME: {k: v for k, v in axes.items() if v},
            output: out_axes
        }
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter's deprecation notice, and tracer warnings
        # for the shape branches padded_trace_shape takes care of.
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', message='.*align_corners.*')
        torch.onnx.export(
            wrapper, (dummy, ),
            path,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[output],
            opset_version=opset,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True)
    return trace_shape


# --- running --------------------------------------------------------------
def ort_session(path: str, num_threads: Optional[int] = None,
                providers: Optional[Sequence[str]] = None):
    """An onnxruntime ``InferenceSession`` for ``path`` (CPU by default).

    Args:
        path (str): The ``.onnx`` file.
        num_threads (int, optional): Intra-op threads; default: onnxruntime's.
        providers (Sequence[str], optional): Execution providers.
            Default: ``['CPUExecutionProvider']``.
    """
    _, ort = _require_onnx()
    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = int(num_threads)
    return ort.InferenceSession(
        str(path), sess_options=options,
        providers=list(providers or ['CPUExecutionProvider']))


def to_input_array(image_array: np.ndarray) -> np.ndarray:
    """The graph's input for an image or a batch.

    A 3-D array is one ``(H, W, 3)`` image as ``mmcv.imread`` / ``cv2.imread``
    return it (BGR); a 4-D array is already an ``(N, 3, H, W)`` batch. Values
    are pixels (0..255), any dtype; the result is contiguous float32.
    """
    array = np.asarray(image_array)
    if array.ndim == 3:
        if array.shape[-1] != 3:
            raise ValueError('A 3-D image must be (H, W, 3); got '
                             f'{array.shape}.')
        array = array.transpose(2, 0, 1)[None]
    elif array.ndim != 4 or array.shape[1] != 3:
        raise ValueError('Expected an (H, W, 3) image or an (N, 3, H, W) '
                         f'batch; got shape {array.shape}.')
    return np.ascontiguousarray(array, dtype=np.float32)


def run_onnx(session, image_array: np.ndarray) -> np.ndarray:
    """Run an exported segmentor on pixels (see :func:`to_input_array`).

    Returns the graph's single output: ``(N, C, H, W)`` logits or
    ``(N, H, W)`` labels. No timing, no warm-up: the caller decides.
    """
    name = session.get_inputs()[0].name
    return session.run(None, {name: to_input_array(image_array)})[0]


def load_image(path: Optional[str], shape: Tuple[int, int],
               seed: int = 0) -> np.ndarray:
    """``(H, W, 3)`` BGR uint8 image resized (bilinear) to ``shape``;
    random pixels when ``path`` is None."""
    if path is None:
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    import mmcv
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Image {path!r} does not exist.')
    img = mmcv.imread(path)  # BGR, as LoadImageFromFile
    if img is None:
        raise ValueError(f'Cannot read image {path!r}.')
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.shape[:2] != tuple(shape):
        img = mmcv.imresize(img, (shape[1], shape[0]))
    return img


@torch.no_grad()
def torch_reference(model: nn.Module,
                    batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Logits and labels of MMSegmentation's own path on an ``(N, 3, H, W)``
    pixel batch: the model's data preprocessor, ``encode_decode`` (decode
    head resized to the image) and ``argmax`` (or the binary threshold)."""
    inputs = [torch.from_numpy(img) for img in batch]
    data = model.data_preprocessor(dict(inputs=inputs), False)
    x = data['inputs']
    h, w = batch.shape[-2:]
    metas = [dict(img_shape=(h, w), ori_shape=(h, w))] * len(batch)
    logits = model.encode_decode(x, metas)
    if logits.shape[1] == 1:
        labels = (logits.sigmoid() > _threshold(model.decode_head))[:, 0]
        labels = labels.long()
    else:
        labels = logits.argmax(dim=1)
    return logits.numpy(), labels.numpy()


def check_onnx(model: nn.Module,
               path: str,
               images: Sequence[np.ndarray],
               tolerance: float = 1e-4,
               session=None) -> Dict[str, object]:
    """Compare onnxruntime with PyTorch on a batch of images.

    Args:
        model (nn.Module): The deployed segmentor the graph was made from.
        path (str): The ``.onnx`` file.
        images (Sequence[np.ndarray]): ``(H, W, 3)`` BGR images of one size.
        tolerance (float): Largest relative logit difference accepted.
        session: An existing :func:`ort_session` for ``path``.

    Returns:
        dict: ``shape``, ``batch``, ``output``, ``rel_diff`` (max |ort -
        torch| / max |torch| of the logits; None for a labels graph),
        ``equal_fraction`` (of label pixels), ``identical`` and ``ok``.
    """
    session = session or ort_session(path)
    batch = np.stack([to_input_array(img)[0] for img in images])
    ref_logits, ref_labels = torch_reference(model, batch)
    out = run_onnx(session, batch)
    output = session.get_outputs()[0].name
    rel = None
    if output == 'logits':
        if out.shape != ref_logits.shape:
            raise RuntimeError(f'onnxruntime returned logits of shape '
                               f'{out.shape}, PyTorch {ref_logits.shape}.')
        rel = float(np.abs(out - ref_logits).max() /
                    max(float(np.abs(ref_logits).max()), 1e-12))
        if out.shape[1] == 1:
            threshold = _threshold(model.decode_head)
            labels = (1 / (1 + np.exp(-out[:, 0]))) > threshold
        else:
            labels = out.argmax(axis=1)
    else:
        labels = out
    if labels.shape != ref_labels.shape:
        raise RuntimeError(f'onnxruntime returned labels of shape '
                           f'{labels.shape}, PyTorch {ref_labels.shape}.')
    decided = ~near_ties(ref_logits, tolerance)
    same = labels.astype(np.int64) == ref_labels
    equal = float(same[decided].mean()) if decided.any() else 1.0
    return dict(
        shape=tuple(batch.shape[-2:]),
        batch=len(batch),
        output=output,
        rel_diff=rel,
        equal_fraction=equal,
        near_ties=int((~decided).sum()),
        identical=equal == 1.0,
        ok=equal == 1.0 and (rel is None or rel <= tolerance))


def format_check(result: Dict[str, object], source: str,
                 tolerance: float) -> str:
    h, w = result['shape']
    rel = result['rel_diff']
    rel_text = ('n/a (labels graph)' if rel is None else
                f'{rel:.2e} (tolerance {tolerance:g})')
    return (f'{source} at {h}x{w}, batch {result["batch"]}: max relative '
            f'logit difference {rel_text}; label maps '
            f'{"identical" if result["identical"] else "DIFFER"} (fraction '
            f'of equal pixels {result["equal_fraction"]:.6f}'
            + (f'; {result["near_ties"]} near-tie pixels not compared'
               if result.get('near_ties') else '') + ')')


def export_segmentor(model: nn.Module,
                     out: str,
                     shape: Tuple[int, int],
                     dynamic: bool = False,
                     output: str = 'logits',
                     opset: int = DEFAULT_OPSET,
                     image: Optional[str] = None,
                     tolerance: float = 1e-4,
                     force: bool = False,
                     label_dtype: str = 'int64',
                     log=print) -> List[Dict[str, object]]:
    """Export, check and atomically write ``out``.

    The graph is written to a temporary file beside ``out``, checked with
    ``onnx.checker`` and compared with PyTorch in onnxruntime on ``image``
    (random pixels if None) resized to ``shape``; with ``dynamic`` also on a
    batch of 2 at :func:`second_check_shape`. Only a graph that passes
    replaces ``out``.

    Raises:
        FileExistsError: ``out`` exists and not ``force``.
        RuntimeError: The graph does not reproduce the model.
    """
    onnx, _ = _require_onnx()
    out = os.fspath(out)
    refuse_to_overwrite(out, force)
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f'Directory {directory!r} does not exist; '
                                'create it first.')
    shape = tuple(int(s) for s in shape)
    if min(shape) < 1:
        raise ValueError(f'Invalid shape {shape}.')
    with atomic_path(out) as tmp:
        trace_shape = export_onnx(model, tmp, shape, dynamic, output, opset,
                                  label_dtype)
        onnx.checker.check_model(tmp)
        kind = ('dynamic batch, height, width; traced at'
                if dynamic else 'fixed')
        log(f'Exported ({kind} {trace_shape[0]}x{trace_shape[1]}, opset '
            f'{opset}, output '
            f'{output}); onnx.checker passed.')
        source = image if image is not None else 'random image'
        img = load_image(image, shape)
        session = ort_session(tmp)
        checks = [([img], shape)]
        if dynamic:
            second = second_check_shape(shape)
            img2 = load_image(image, second)
            checks.append(([img2, np.ascontiguousarray(img2[:, ::-1])],
                           second))
        results = []
        for images, _ in checks:
            result = check_onnx(model, tmp, images, tolerance, session)
            log(format_check(result, source, tolerance))
            results.append(result)
        del session
        bad = [r for r in results if not r['ok']]
        if bad:
            hint = ('; the dynamic graph does not generalise: export the '
                    'size you need without --dynamic' if dynamic and
                    results[0]['ok'] else '')
            raise RuntimeError(
                'The ONNX model does not reproduce the PyTorch model at '
                + ', '.join('{}x{}'.format(*r['shape']) for r in bad) +
                f'{hint}; nothing was written.')
    log(f'ONNX model written to {out}')
    return results
