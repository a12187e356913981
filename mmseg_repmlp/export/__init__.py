"""Export of deployed segmentors to other runtimes (ONNX)."""
from .onnx import (DEFAULT_OPSET, ExportableAdaptiveAvgPool2d, OnnxSegmentor,
                   check_onnx, export_onnx, export_segmentor, load_image,
                   make_exportable, ort_session, padded_trace_shape, run_onnx,
                   to_input_array, torch_reference)

__all__ = [
    'DEFAULT_OPSET', 'ExportableAdaptiveAvgPool2d', 'OnnxSegmentor',
    'check_onnx', 'export_onnx', 'export_segmentor', 'load_image',
    'make_exportable', 'ort_session', 'padded_trace_shape', 'run_onnx',
    'to_input_array', 'torch_reference'
]
