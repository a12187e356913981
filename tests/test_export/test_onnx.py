"""tools/export_onnx.py: export, check and write the deployed segmentor."""
import re

import mmcv
import numpy as np
import pytest
import torch

from mmseg_repmlp.utils import max_relative_difference, near_ties

from ..conftest import CONFIG, run, tool

onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')


def _val_image(root):
    return sorted((root / 'leftImg8bit' / 'val').rglob('*.png'))[0]


@torch.no_grad()
def _torch_logits(model, images):
    """MMSegmentation's own path: data preprocessor, then encode_decode
    (decode head resized to the image), on BGR uint8 (H, W, 3) images."""
    inputs = [torch.from_numpy(img).permute(2, 0, 1) for img in images]
    x = model.data_preprocessor(dict(inputs=inputs), False)['inputs']
    h, w = images[0].shape[:2]
    return model.encode_decode(x, [dict(img_shape=(h, w))] * len(images))


def _dims(value_info):
    return [d.dim_param or d.dim_value
            for d in value_info.type.tensor_type.shape.dim]


@pytest.fixture(scope='module')
def dynamic_logits(trained, tiny_cityscapes, tmp_path_factory):
    work, _ = trained
    out = tmp_path_factory.mktemp('onnx') / 'dynamic.onnx'
    done = run([*tool('export_onnx.py'), CONFIG, work / 'iter_4_deploy.pth',
                out, '--dynamic', '--image', _val_image(tiny_cityscapes)])
    return out, done.stdout


def test_dynamic_logits_graph_is_valid_and_says_how_close_it_is(
        dynamic_logits):
    out, stdout = dynamic_logits
    onnx.checker.check_model(str(out))
    graph = onnx.load(str(out)).graph
    assert [i.name for i in graph.input] == ['image']
    assert _dims(graph.input[0]) == ['batch', 3, 'height', 'width']
    assert [o.name for o in graph.output] == ['logits']
    assert 'onnx.checker passed' in stdout
    # Checked at the export size (a whole number of windows) and, batch 2,
    # at a second size that is not.
    checks = re.findall(r'at (\d+)x(\d+), batch (\d): max relative logit '
                        r'difference ([0-9.e+-]+) .*label maps identical',
                        stdout)
    assert [c[:3] for c in checks] == [('128', '256', '1'),
                                       ('97', '193', '2')], stdout
    assert all(float(c[3]) < 1e-4 for c in checks)
    assert not list(out.parent.glob('*.tmp'))


@pytest.mark.parametrize('shape', [None, (100, 180), (37, 61)])
def test_dynamic_graph_matches_pytorch_on_a_real_image(
        dynamic_logits, deployed, tiny_cityscapes, shape):
    from mmseg_repmlp.export import ort_session, run_onnx
    out, _ = dynamic_logits
    img = mmcv.imread(str(_val_image(tiny_cityscapes)))  # BGR, 128x256
    if shape is not None:  # not a whole number of windows
        img = mmcv.imresize(img, (shape[1], shape[0]))
    images = [img, np.ascontiguousarray(img[:, ::-1])]
    ref = _torch_logits(deployed, images).numpy()
    session = ort_session(str(out))
    got = run_onnx(session, np.stack([i.transpose(2, 0, 1)
                                      for i in images]))
    assert got.shape == ref.shape == (2, 19, *img.shape[:2])
    assert max_relative_difference(got, ref) < 1e-4
    # Identical labels wherever float rounding can decide (a 4-iteration
    # model has many near-ties).
    decided = ~near_ties(ref, 1e-4)
    assert decided.mean() > 0.5
    assert np.array_equal(got.argmax(1)[decided], ref.argmax(1)[decided])
    # One (H, W, 3) image as cv2.imread gives it works too.
    single = run_onnx(session, img)
    assert single.shape == (1, 19, *img.shape[:2])
    assert max_relative_difference(single, ref[:1]) < 1e-4


def test_labels_graph_from_a_training_checkpoint(trained, tiny_cityscapes,
                                                  deployed, tmp_path, capsys):
    # In-process (the CLI's main) to save an interpreter start.
    from mmseg_repmlp.cli.export_onnx import main
    from mmseg_repmlp.export import ort_session, run_onnx
    work, _ = trained
    image = _val_image(tiny_cityscapes)
    out = tmp_path / 'labels.onnx'
    out.write_bytes(b'old')  # replaced with --force
    main([CONFIG, str(work / 'iter_4.pth'), str(out), '--output', 'labels',
          '--shape', '100', '180', '--image', str(image), '--force'])
    stdout = capsys.readouterr().out
    assert 'label maps identical (fraction of equal pixels 1.000000' \
        in stdout, stdout
    onnx.checker.check_model(str(out))
    graph = onnx.load(str(out)).graph
    assert _dims(graph.input[0]) == [1, 3, 100, 180]
    assert [o.name for o in graph.output] == ['labels']
    img = mmcv.imresize(mmcv.imread(str(image)), (180, 100))
    labels = run_onnx(ort_session(str(out)), img)
    assert labels.dtype == np.int64 and labels.shape == (1, 100, 180)
    ref_logits = _torch_logits(deployed, [img]).numpy()
    decided = ~near_ties(ref_logits, 1e-4)
    assert np.array_equal(labels[decided], ref_logits.argmax(1)[decided])
    assert not list(tmp_path.glob('*.tmp'))
    # The usual mode of a new file (umask), not the temporary file's 0600.
    (tmp_path / 'plain').touch()
    assert out.stat().st_mode == (tmp_path / 'plain').stat().st_mode


def test_refuses_to_overwrite_without_force(dynamic_logits, trained):
    from mmseg_repmlp.cli.export_onnx import main
    out, _ = dynamic_logits
    work, _ = trained
    before = out.read_bytes()
    with pytest.raises(SystemExit) as exc:
        main([CONFIG, str(work / 'iter_4_deploy.pth'), str(out),
              '--dynamic'])
    message = str(exc.value.code)
    assert 'exists' in message and '--force' in message
    assert out.read_bytes() == before


def test_errors_say_what_to_do(trained, tmp_path):
    from mmseg_repmlp.cli.export_onnx import main
    work, _ = trained
    with pytest.raises(SystemExit) as exc:
        main([CONFIG, str(work / 'iter_4_deploy.pth'),
              str(tmp_path / 'missing_dir' / 'x.onnx')])
    assert 'create it first' in str(exc.value.code)
    with pytest.raises(SystemExit) as exc:
        main([CONFIG, str(work / 'iter_4_deploy.pth'),
              str(tmp_path / 'x.onnx'), '--opset', '9'])
    assert '--opset must be in [11, 20]' in str(exc.value.code)
    assert not list(tmp_path.iterdir())
