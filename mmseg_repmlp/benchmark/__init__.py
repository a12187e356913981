"""Speed, memory and FLOPs of UPerNet + RepMLPNet (PyTorch train and deploy
structures, and the deploy segmentor in onnxruntime) against MMSegmentation's
UPerNet baselines (ResNetV1c-50/101, Swin-T), or of the user's own model
and its ONNX files (:mod:`.own_model`); see ``tools/benchmark.py``."""
from .candidates import Candidate, build_candidate, model_config
from .report import environment, format_markdown, write_json
from .runner import measure_candidate, plans, run_benchmark
from .settings import (
                       BASELINES,
                       CANDIDATES,
                       SMALL_ARCH,
                       SMALL_PRESET,
                       BenchmarkSettings,
                       default_candidates,
                       load_arch,
                       onnx_available,
                       parse_shape,
                       resolve_settings,
)

__all__ = [
    'BASELINES', 'CANDIDATES', 'SMALL_ARCH', 'SMALL_PRESET',
    'BenchmarkSettings', 'Candidate', 'build_candidate', 'default_candidates',
    'environment', 'format_markdown', 'load_arch', 'measure_candidate',
    'model_config', 'onnx_available', 'parse_shape', 'plans',
    'resolve_settings', 'run_benchmark', 'write_json'
]
