"""An exported file run by its suffix: ``.onnx`` in onnxruntime, an
OpenVINO IR (``.xml`` or its folder) through :func:`~.ir.compile_ir`, with
the metadata it carries."""
import json
import os
from typing import Dict, Optional

import numpy as np

from .ir import compile_ir, ir_file, read_ir_metadata, run_ir
from .onnx import read_metadata
from .runtime import ort_session, run_onnx


class ExportedModel:
    """A segmentor file written by ``tools/export_onnx.py`` or
    ``tools/export_openvino.py``, ready to run.

    Args:
        path (str): ``.onnx`` file, ``.xml`` IR or a folder with
            ``model.xml``.
        threads (int, optional): Inference threads (default: the
            runtime's).

    Attributes:
        kind (str): ``'onnx'`` or ``'openvino'``.
        metadata (dict[str, str]): The file's metadata
            (:data:`~.onnx.METADATA_SCHEMA` keys).
    """

    def __init__(self, path: str, threads: Optional[int] = None) -> None:
        path = os.fspath(path)
        if path.endswith('.onnx'):
            if not os.path.isfile(path):
                raise FileNotFoundError(f'ONNX file {path!r} does not exist.')
            self.kind = 'onnx'
            self.metadata = read_metadata(path)
            self._session = ort_session(path, num_threads=threads)
        elif path.endswith('.xml') or os.path.isdir(path):
            self.kind = 'openvino'
            path = ir_file(path)
            self.metadata = read_ir_metadata(path)
            self._compiled = compile_ir(path, threads)
            self._request = self._compiled.create_infer_request()
        else:
            raise ValueError(f'{path!r} is neither an .onnx file nor an '
                             'OpenVINO IR (.xml, or its folder).')
        self.path = path
        missing = [k for k in ('output', 'resize_in_graph', 'test_scale')
                   if k not in self.metadata]
        if missing:
            raise ValueError(f'{path!r} has no mmseg_repmlp metadata '
                             f'({", ".join(missing)} missing): export it '
                             'with tools/export_onnx.py or '
                             'tools/export_openvino.py.')

    @property
    def resize_in_graph(self) -> bool:
        return bool(json.loads(self.metadata['resize_in_graph']))

    @property
    def output(self) -> str:
        return self.metadata['output']

    def info(self) -> Dict[str, str]:
        return dict(self.metadata, kind=self.kind, path=self.path)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """The file's output for a pixel batch (``(N, 3, H, W)`` BGR
        0..255, or one ``(H, W, 3)`` image)."""
        if self.kind == 'onnx':
            return run_onnx(self._session, batch)
        return run_ir(self._compiled, batch, self._request)


def without_resize(pipeline):
    """``pipeline`` (a list of transform dicts) without its ``Resize``: for
    a file that resizes inside, so that it sees the images as they are."""
    return [step for step in pipeline
            if str(getattr(step.get('type'), '__name__', step.get('type'))
                   ).rsplit('.', 1)[-1] != 'Resize']


def build_exported_segmentor(exported: ExportedModel):
    """An MMEngine model whose ``test_step`` runs ``exported``: MMEngine's
    test loop, hooks and the config's evaluator then run on the file's
    outputs exactly as on a checkpoint's.

    Batches come from the config's test dataloader: uint8 ``(3, H, W)`` BGR
    images. A file that resizes inside (``resize_in_graph``) must get the
    images unresized (its dataloader built with :func:`without_resize`);
    another gets the pipeline's resized image, and its logits are resized
    bilinearly to the original size (``ori_shape``) as MMSegmentation's
    ``postprocess_result`` does, before the labels are taken.
    """
    import torch
    import torch.nn.functional as F
    from mmengine.model import BaseModel
    from mmengine.structures import PixelData

    from ..utils.compare import logits_to_labels

    align_corners = bool(json.loads(exported.metadata.get(
        'align_corners', 'false')))
    threshold = None
    rule = exported.metadata.get('label_rule', 'argmax')
    if rule.startswith('sigmoid>'):
        threshold = float(rule[len('sigmoid>'):])

    class ExportedSegmentor(BaseModel):

        def __init__(self):
            super().__init__()
            self.exported = exported

        def forward(self, inputs, data_samples=None, mode='predict'):
            raise RuntimeError('ExportedSegmentor only runs test_step.')

        @torch.no_grad()
        def test_step(self, data):
            samples = data['data_samples']
            for image, sample in zip(data['inputs'], samples):
                out = self.exported(image.numpy()[None].astype(np.float32))
                ori_h, ori_w = sample.ori_shape
                if exported.output == 'logits':
                    logits = torch.from_numpy(out)
                    if logits.shape[-2:] != (ori_h, ori_w):
                        logits = F.interpolate(
                            logits, size=(ori_h, ori_w), mode='bilinear',
                            align_corners=align_corners)
                    labels = logits_to_labels(logits, threshold)
                    sample.seg_logits = PixelData(data=logits[0])
                else:
                    labels = torch.from_numpy(out.astype(np.int64))
                    if labels.shape[-2:] != (ori_h, ori_w):
                        raise ValueError(
                            f'{exported.path} returns labels at the '
                            'resized size; export logits to evaluate it.')
                sample.pred_sem_seg = PixelData(data=labels[0][None])
            return samples

    return ExportedSegmentor()
