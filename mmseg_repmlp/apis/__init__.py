from mmseg.apis import show_result_pyplot

from .fast_inference import accelerate, is_accelerated
from .images import read_image
from .inference import inference_model, init_model

__all__ = [
    'init_model', 'inference_model', 'read_image', 'show_result_pyplot',
    'accelerate', 'is_accelerated'
]
