"""Checkpoints are untrusted input: exactly MMEngine's own types are allowed."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

import mmseg_repmlp  # noqa: F401  (registers the allowlist)
from mmseg_repmlp.checkpoint import UnsafeCheckpointError, safe_torch_load
from mmseg_repmlp.checkpoint.safe_globals import restricted_getattr


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class _GetattrEscape:
    """getattr on an allowed class, reaching for something that is not a
    HistoryBuffer statistic."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


class _GetattrOnNumpy:
    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


def test_mmengine_message_hub_objects_load(tmp_path):
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    buf.update(1.5, count=2)
    path = tmp_path / 'hub.pth'
    torch.save({'message_hub': {'log_scalars': {'loss': buf}},
                'scalar': np.float32(2.0), 'array': np.arange(3)}, path)
    for loaded in (safe_torch_load(str(path)),
                   torch.load(path),  # torch's default: weights_only=True
                   _load_checkpoint(str(path), map_location='cpu')):
        hub = loaded['message_hub']['log_scalars']['loss']
        assert hub.mean() == buf.mean() and hub.current() == 1.5
        assert loaded['scalar'] == np.float32(2.0)
        assert loaded['array'].tolist() == [0, 1, 2]


def test_a_payload_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': _RunsCode(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match='Refused to load'):
        safe_torch_load(str(path))
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path), map_location='cpu')  # resume / load_from
    assert not marker.exists()


@pytest.mark.parametrize('payload,asked', [
    (_GetattrEscape(), "getattr('HistoryBuffer', '__init__')"),
    (_GetattrOnNumpy(), "getattr('ndarray', 'tofile')"),
])
def test_getattr_is_allowed_only_for_history_buffer_statistics(
        tmp_path, payload, asked):
    path = tmp_path / 'payload.pth'
    torch.save({'x': payload}, path)
    with pytest.raises(UnsafeCheckpointError, match='Refused to load'):
        safe_torch_load(str(path))
    # getattr is on the allowlist, so torch's unpickler calls the project's
    # restricted_getattr, and the refusal is its own (torch's error carries
    # it; its generic refusal of a global names no HistoryBuffer statistics).
    with pytest.raises(pickle.UnpicklingError) as err:
        torch.load(path)
    assert f'checkpoint asks for {asked}; only HistoryBuffer statistics ' \
        '(current, max, mean, min) are allowed' in str(err.value)


def test_restricted_getattr_allows_exactly_the_statistics():
    for name in ('min', 'max', 'current', 'mean'):
        assert restricted_getattr(HistoryBuffer, name) is \
            getattr(HistoryBuffer, name)
    for obj, name, default in ((HistoryBuffer, 'update', ()),
                               (HistoryBuffer, 'mean', (None, )),
                               (np.ndarray, 'mean', ())):
        with pytest.raises(pickle.UnpicklingError, match='only HistoryBuffer'):
            restricted_getattr(obj, name, *default)


def test_truncated_checkpoint_has_a_clear_error(tmp_path):
    path = tmp_path / 'cut.pth'
    torch.save({'w': torch.randn(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match='truncated or not a PyTorch'):
        safe_torch_load(str(path))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        safe_torch_load(str(tmp_path / 'nope.pth'))


def test_the_refusal_says_why_and_not_how_to_turn_safety_off(tmp_path):
    path = tmp_path / 'escape.pth'  # no hint in the name this time
    torch.save({'x': _GetattrEscape()}, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_torch_load(str(path))
    message = str(err.value)
    assert "checkpoint asks for getattr('HistoryBuffer', '__init__')" in message
    assert 'weights_only` set to `False`' not in message
