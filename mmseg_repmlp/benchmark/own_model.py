"""The user's own model as benchmark candidates:
``tools/benchmark.py CONFIG CHECKPOINT [--onnx FILE ...]``.

* ``pytorch-deploy``: the segmentor :func:`~mmseg_repmlp.apis.init_model`
  builds from the checkpoint (the deploy form; a training checkpoint is
  re-parameterized), what ``inference_model`` and ``tools/test.py`` run.
  Other rows give their latency relative to it.
* ``pytorch-train``: the training form, when the checkpoint is a training
  one (a deploy checkpoint no longer holds it).
* ``onnx:FILE``: each exported file in onnxruntime on the CPU, fed the same
  seeded random 0..255 BGR float32 pixels as the exported graph expects.

They go through the same runner, timers and report as the backbone
comparison (:mod:`.runner`); only what is built differs.
"""
import functools
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ..apis import check_size, init_model
from ..checkpoint.deploy_ckpt import is_deploy_checkpoint, read_checkpoint
from ..export.runtime import ort_session
from .candidates import Candidate, CandidateSpec, to_device
from .settings import OWN_DEPLOY, OWN_TRAIN, BenchmarkSettings, Shape

#: What each candidate runs, as the report's description column says it.
RUNS = dict(deploy='PyTorch, deploy form', train='PyTorch, training form',
            onnx='onnxruntime (CPU)')
#: The input type of the exported graphs (raw pixels, see
#: ``tools/export_onnx.py``), the only one fed here.
ONNX_INPUT_TYPE = 'tensor(float)'


@dataclass(frozen=True)
class OnnxInput:
    """The one input of an exported graph.

    Attributes:
        name (str): Its name.
        type (str): onnxruntime's type string, e.g. ``'tensor(float)'``.
        shape (tuple): ``(N, C, H, W)``; an int for a fixed axis, None for a
            dynamic one.
    """
    name: str
    type: str
    shape: Tuple[Optional[int], ...]

    @property
    def fixed_shape(self) -> Optional[Shape]:
        """``(H, W)`` when the graph takes one size only."""
        h, w = self.shape[-2:]
        return (h, w) if isinstance(h, int) and isinstance(w, int) else None


@functools.lru_cache(maxsize=None)
def onnx_input(path: str) -> OnnxInput:
    """Read the input of exported graph ``path`` (opens it once).

    Raises:
        ValueError: The graph has more than one input, or its input is not
            an ``(N, 3, H, W)`` float image.
    """
    if not osp.isfile(path):
        raise ValueError(f'--onnx {path!r} does not exist.')
    try:
        inputs = ort_session(path).get_inputs()
    except ImportError as err:  # says how to install onnxruntime
        raise ValueError(str(err)) from None
    except Exception as err:  # noqa: BLE001  onnxruntime's own error types
        raise ValueError(f'{path!r} is not an ONNX model onnxruntime can '
                         f'load: {err}') from None
    if len(inputs) != 1:
        raise ValueError(f'{path!r} has {len(inputs)} inputs; the benchmark '
                         'feeds exported segmentors, which take one image '
                         'batch.')
    found = inputs[0]
    shape = tuple(d if isinstance(d, int) else None for d in found.shape)
    if found.type != ONNX_INPUT_TYPE or len(shape) != 4 or shape[1] not in (
            3, None):
        raise ValueError(
            f'{path!r} takes {found.type} of shape {list(found.shape)}; the '
            'benchmark feeds float32 (N, 3, H, W) raw pixels, the input '
            'tools/export_onnx.py writes.')
    return OnnxInput(found.name, found.type, shape)


def default_shape(config: str, onnx_files: List[str]) -> Shape:
    """The size to time at when none is given: the one size fixed-size
    graphs take, else the config's crop size (as ``tools/export_onnx.py``
    checks at, :func:`~mmseg_repmlp.apis.check_size`)."""
    fixed = {onnx_input(path).fixed_shape for path in onnx_files} - {None}
    if len(fixed) > 1:
        raise ValueError(f'The ONNX files take different fixed sizes '
                         f'{sorted(fixed)}: time them in separate runs, or '
                         'export with --dynamic.')
    if fixed:
        return fixed.pop()
    from mmengine.config import Config
    return check_size(Config.fromfile(config))


def check_onnx_files(settings: BenchmarkSettings) -> None:
    """Raise ``ValueError`` naming the fix when a file cannot take the
    inputs of ``settings`` (a fixed size or batch that differs)."""
    for path in settings.onnx:
        found = onnx_input(path)
        batch = found.shape[0]
        if batch is not None and batch != settings.batch:
            raise ValueError(f'{path!r} takes batches of {batch}; run with '
                             f'--batch {batch}, or export with --dynamic.')
        fixed = found.fixed_shape
        wrong = [s for s in settings.shapes if fixed and tuple(s) != fixed]
        if wrong:
            raise ValueError(
                f'{path!r} takes {fixed[0]}x{fixed[1]} images only, not '
                f'{"x".join(map(str, wrong[0]))}: run with --shape '
                f'{fixed[0]} {fixed[1]}, or export with --dynamic.')


def own_specs(settings: BenchmarkSettings) -> List[CandidateSpec]:
    """The candidates of ``settings.config`` and ``settings.checkpoint``,
    in report order (see the module docstring)."""
    training = not is_deploy_checkpoint(
        read_checkpoint(settings.checkpoint, mmap=True))

    def build(deploy: bool = True) -> Candidate:
        return init_model(settings.config, settings.checkpoint,
                          device=settings.device, deploy=deploy)

    def deploy_candidate() -> Candidate:
        # The training form is the reference the deploy form is checked
        # against, as in the backbone comparison.
        model, reference = build(), build(False) if training else None
        to_device(settings, model, reference)
        return Candidate(OWN_DEPLOY, model, RUNS['deploy'], 'deploy',
                         reference)

    def train_candidate() -> Candidate:
        model = build(False)
        to_device(settings, model)
        return Candidate(OWN_TRAIN, model, RUNS['train'], 'train')

    def onnx_candidate(name: str, path: str) -> Candidate:
        # model: the PyTorch deploy form, for parameters and MACs; the file
        # is compared with the training form where the checkpoint has it.
        model, reference = build(), build(False) if training else None
        return Candidate(name, model, RUNS['onnx'], 'onnx', reference,
                         onnx_file=path)

    specs = [CandidateSpec(OWN_DEPLOY, 'deploy', RUNS['deploy'],
                           deploy_candidate, baseline=True)]
    if training:
        specs.append(CandidateSpec(OWN_TRAIN, 'train', RUNS['train'],
                                   train_candidate))
    names = [osp.basename(path) for path in settings.onnx]
    for name, path in zip(names, settings.onnx, strict=True):
        # The basename unless two files share it.
        name = 'onnx:' + (name if names.count(name) == 1 else path)
        specs.append(CandidateSpec(
            name, 'onnx', RUNS['onnx'],
            lambda name=name, path=path: onnx_candidate(name, path)))
    return specs
