"""Export of deployed segmentors to other runtimes (ONNX, OpenVINO)."""
from .check import (
                    DEFAULT_AGREEMENT_SHAPES,
                    agreement_shapes,
                    check_image,
                    check_onnx,
                    format_agreement,
                    format_check,
                    resize_image,
                    second_check_shape,
                    toolkit_agreement,
                    torch_reference,
)

# check_image's former name, kept for its importers.
from .check import check_image as load_image
from .exportable import (
                         ExportableAdaptiveAvgPool2d,
                         UnfoldedRepMLPBlock,
                         make_exportable,
                         split_local_kernel,
)
from .exported import ExportedModel, build_exported_segmentor
from .ir import compile_ir, compiled_precision, read_ir_metadata, run_ir
from .onnx import (
                   DEFAULT_OPSET,
                   METADATA_SCHEMA,
                   export_onnx,
                   export_segmentor,
                   model_metadata,
                   read_metadata,
)
from .openvino import export_openvino
from .quantize import int8_ignored_names, layer_report, quantize_int8
from .runtime import (
                      check_input_shape,
                      ort_session,
                      require_onnx,
                      run_onnx,
                      to_input_array,
)
from .trace_shape import padded_trace_shape, resized_trace_shape
from .wrapper import (
                      OnnxSegmentor,
                      PipelineResize,
                      pipeline_resize,
                      resize_like_opencv,
)

__all__ = [
    'DEFAULT_AGREEMENT_SHAPES', 'DEFAULT_OPSET', 'METADATA_SCHEMA',
    'ExportableAdaptiveAvgPool2d', 'ExportedModel', 'OnnxSegmentor',
    'PipelineResize', 'UnfoldedRepMLPBlock', 'agreement_shapes',
    'build_exported_segmentor', 'check_image', 'check_input_shape',
    'check_onnx', 'compile_ir', 'compiled_precision', 'export_onnx',
    'export_openvino', 'export_segmentor', 'int8_ignored_names',
    'layer_report', 'quantize_int8', 'read_ir_metadata', 'run_ir',
    'split_local_kernel', 'format_agreement', 'format_check',
    'load_image', 'make_exportable', 'model_metadata', 'ort_session',
    'padded_trace_shape', 'pipeline_resize', 'read_metadata',
    'require_onnx', 'resize_image', 'resize_like_opencv',
    'resized_trace_shape', 'run_onnx', 'second_check_shape',
    'to_input_array', 'toolkit_agreement', 'torch_reference'
]
