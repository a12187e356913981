"""Export of deployed segmentors to other runtimes (ONNX)."""
from .check import (
                    check_image,
                    check_onnx,
                    format_check,
                    second_check_shape,
                    torch_reference,
)

# check_image's former name, kept for its importers.
from .check import check_image as load_image
from .exportable import ExportableAdaptiveAvgPool2d, make_exportable
from .onnx import DEFAULT_OPSET, export_onnx, export_segmentor
from .runtime import ort_session, require_onnx, run_onnx, to_input_array
from .trace_shape import padded_trace_shape
from .wrapper import OnnxSegmentor

__all__ = [
    'DEFAULT_OPSET', 'ExportableAdaptiveAvgPool2d', 'OnnxSegmentor',
    'check_image', 'check_onnx', 'export_onnx', 'export_segmentor',
    'format_check', 'load_image', 'make_exportable', 'ort_session',
    'padded_trace_shape', 'require_onnx', 'run_onnx', 'second_check_shape',
    'to_input_array', 'torch_reference'
]
