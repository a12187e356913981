from mmseg.apis import inference_model, show_result_pyplot

from .inference import init_model

__all__ = ['init_model', 'inference_model', 'show_result_pyplot']
