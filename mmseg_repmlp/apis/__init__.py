from ..utils.images import read_image
from ..utils.sizes import DEFAULT_CHECK_SIZE, check_size
from .fast_inference import accelerate, is_accelerated
from .folder import (
                     IMAGE_EXTENSIONS,
                     FileJob,
                     colour_overlay,
                     find_images,
                     iter_segmented,
                     label_map,
                     plan_outputs,
                     segment_files,
)
from .inference import inference_model, init_model, show_result_pyplot

__all__ = [
    'init_model', 'inference_model', 'read_image', 'show_result_pyplot',
    'check_size', 'DEFAULT_CHECK_SIZE', 'accelerate', 'is_accelerated',
    'IMAGE_EXTENSIONS', 'FileJob', 'colour_overlay', 'find_images',
    'iter_segmented', 'label_map', 'plan_outputs', 'segment_files'
]
