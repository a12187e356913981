"""tools/export_onnx.py: export, check and write the deployed segmentor."""
import copy
import json
import re

import cv2
import mmcv
import numpy as np
import onnx
import pytest
import torch

from mmseg_repmlp.utils import max_relative_difference, near_ties

from ..conftest import CONFIG
from .conftest import SIZES, val_image


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
def dynamic_logits(native_onnx):
    # --native-resolution (the conftest's export): these tests compare the
    # graph with the model at the input size, the graph of before that
    # option, when the resize was not in the graph.
    return native_onnx


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
    img = mmcv.imread(str(val_image(tiny_cityscapes)))  # BGR, 128x256
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
    image = val_image(tiny_cityscapes)
    out = tmp_path / 'labels.onnx'
    out.write_bytes(b'old')  # replaced with --force
    # --native-resolution: compared with the model at the input size below.
    main([CONFIG, str(work / 'iter_4.pth'), str(out), '--output', 'labels',
          '--shape', '100', '180', '--image', str(image), '--force',
          '--native-resolution'])
    stdout = capsys.readouterr().out
    assert 'label maps identical (fraction of equal pixels 1.000000' \
        in stdout, stdout
    onnx.checker.check_model(str(out))
    graph = onnx.load(str(out)).graph
    assert _dims(graph.input[0]) == [1, 3, 100, 180]
    assert [o.name for o in graph.output] == ['labels']
    img = mmcv.imresize(mmcv.imread(str(image)), (180, 100))
    labels = run_onnx(ort_session(str(out)), img)
    # uint8 by default now (19 classes); it was int64.
    assert labels.dtype == np.uint8 and labels.shape == (1, 100, 180)
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


# --- the default graph: the toolkit's labels, a self-describing file -----
AGREEMENT = re.compile(r'Label agreement with inference_model on .* at '
                       r'(\d+)x(\d+): ([0-9.]+) % of pixels(.*)')


def _agreement(stdout):
    return {(int(h), int(w)): (float(p), rest)
            for h, w, p, rest in AGREEMENT.findall(stdout)}


def _labels(session, img):
    from mmseg_repmlp.export import run_onnx
    return run_onnx(session, img).argmax(1)[0]


def test_default_graph_is_dynamic_and_reports_the_toolkits_labels(
        resized_onnx):
    out, stdout = resized_onnx
    graph = onnx.load(str(out)).graph
    # No --shape, no --dynamic: any batch and size; the class axis is fixed.
    assert _dims(graph.input[0]) == ['batch', 3, 'height', 'width']
    assert _dims(graph.output[0]) == ['batch', 19, 'height', 'width']
    assert 'test-time resize to [512, 256] in the graph' in stdout
    found = _agreement(stdout)
    assert set(found) == set(SIZES), stdout
    assert all(p >= 99.9 for p, _ in found.values()), stdout


def test_default_graph_gives_inference_models_labels_at_any_size(
        resized_onnx, deployed, sized_images):
    from mmseg_repmlp.apis import inference_model, read_image
    from mmseg_repmlp.export import ort_session
    out, _ = resized_onnx
    session = ort_session(str(out))
    for h, w in SIZES:
        path = str(sized_images / f'{h}x{w}.png')
        labels = _labels(session, read_image(path))
        ref = inference_model(deployed, path).pred_sem_seg.data[0].numpy()
        assert labels.shape == ref.shape == (h, w)
        assert (labels == ref).mean() >= 0.999, (h, w)


def test_metadata_describes_the_file(resized_onnx, deployed):
    from mmseg_repmlp import __version__
    from mmseg_repmlp.export import METADATA_SCHEMA, ort_session
    out, stdout = resized_onnx
    model = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    assert list(meta) == list(METADATA_SCHEMA)
    # What onnxruntime gives a deployer without torch is the same.
    assert ort_session(str(out)).get_modelmeta().custom_metadata_map == meta
    dataset = deployed.dataset_meta
    assert json.loads(meta['classes']) == list(dataset['classes'])
    assert json.loads(meta['palette']) == [list(c)
                                           for c in dataset['palette']]
    assert json.loads(meta['palette'])[0] == [128, 64, 128]  # road, RGB
    expected = {
        'mmseg_repmlp.version': __version__, 'palette_order': 'RGB',
        'num_classes': '19', 'input_name': 'image', 'input_layout': 'NCHW',
        'input_channel_order': 'BGR', 'input_range': '0..255',
        'input_dtype': 'float32', 'bgr_to_rgb': 'true',
        'mean': '[123.675, 116.28, 103.53]', 'std': '[58.395, 57.12, 57.375]',
        'normalization_in_graph': 'true', 'test_scale': '[512, 256]',
        'keep_ratio': 'true', 'resize_in_graph': 'true',
        'align_corners': 'false', 'output': 'logits', 'label_dtype': 'uint8',
        'label_rule': 'argmax', 'dynamic': 'true', 'opset': '17'}
    assert {k: meta[k] for k in expected} == expected
    for text in ['BGR', '0..255', 'road, sidewalk', 'inference_model',
                 '[512, 256]']:
        assert text in model.doc_string
    # Printed after writing, as read back from the file.
    printed = stdout.split('Metadata (onnx.load(path).metadata_props):\n')[1]
    assert printed.splitlines() == [f'  {k}: {v}' for k, v in meta.items()]


def test_native_resolution_graph_says_what_it_leaves_out(dynamic_logits):
    out, stdout = dynamic_logits
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta['resize_in_graph'] == 'false'
    # What a deployer needs to resize as the toolkit does.
    assert (meta['test_scale'], meta['keep_ratio']) == ('[512, 256]', 'true')
    assert 'no resize in the graph' in stdout
    found = _agreement(stdout)
    assert set(found) == {(333, 517), (256, 512)}
    # At the test scale's own size there is nothing to resize.
    assert found[(256, 512)][0] >= 99.9
    assert all('native resolution' in rest for _, rest in found.values())


def test_fixed_labels_graph_of_a_real_image_size(trained, tiny_cityscapes,
                                                 deployed, tmp_path, capsys):
    from mmseg_repmlp.apis import inference_model
    from mmseg_repmlp.cli.export_onnx import main
    from mmseg_repmlp.export import ort_session, run_onnx
    work, _ = trained
    out = tmp_path / 'fixed.onnx'
    main([CONFIG, str(work / 'iter_4_deploy.pth'), str(out), '--output',
          'labels', '--shape', '333', '517', '--image',
          str(val_image(tiny_cityscapes))])
    stdout = capsys.readouterr().out
    assert list(_agreement(stdout)) == [(333, 517)]
    assert _agreement(stdout)[(333, 517)][0] >= 99.9
    model = onnx.load(str(out))
    assert _dims(model.graph.input[0]) == [1, 3, 333, 517]
    assert _dims(model.graph.output[0]) == [1, 333, 517]
    meta = {p.key: p.value for p in model.metadata_props}
    assert (meta['output'], meta['label_dtype'], meta['dynamic']) == (
        'labels', 'uint8', 'false')
    img = mmcv.imresize(mmcv.imread(str(val_image(tiny_cityscapes))),
                        (517, 333))
    labels = run_onnx(ort_session(str(out)), img)
    assert labels.dtype == np.uint8 and labels.shape == (1, 333, 517)
    ref = inference_model(deployed, img).pred_sem_seg.data[0].numpy()
    assert (labels[0] == ref).mean() >= 0.999


def _truncated_jpeg(path):
    ok, data = cv2.imencode('.jpg', np.full((64, 96, 3), 90, np.uint8))
    path.write_bytes(data.tobytes()[:-40])
    return path


def test_a_bad_image_is_reported_before_the_model_is_built(tmp_path,
                                                            monkeypatch):
    from mmseg_repmlp.cli import export_onnx as cli

    def refuse(*args, **kwargs):
        raise AssertionError('the model was built before --image was read')

    monkeypatch.setattr(cli, 'init_model', refuse)
    cut = _truncated_jpeg(tmp_path / 'cut.jpg')
    for image, message in [(cut, 'truncated'),
                           (tmp_path / 'missing.png', 'does not exist')]:
        with pytest.raises(SystemExit) as exc:
            cli.main([CONFIG, 'any.pth', str(tmp_path / 'x.onnx'),
                      '--image', str(image)])
        assert message in str(exc.value.code)


def test_export_segmentor_reads_the_image_before_exporting(
        deployed, tmp_path, monkeypatch):
    from mmseg_repmlp.export import export_segmentor
    from mmseg_repmlp.export import onnx as export_module

    def refuse(*args, **kwargs):
        raise AssertionError('exported before the image was read')

    monkeypatch.setattr(export_module, 'export_onnx', refuse)
    with pytest.raises(ValueError, match='truncated'):
        export_segmentor(deployed, tmp_path / 'x.onnx', (64, 96),
                         image=str(_truncated_jpeg(tmp_path / 'cut.jpg')))


def test_a_graph_without_the_toolkits_labels_is_not_written(deployed,
                                                            tmp_path):
    from mmseg_repmlp.export import export_segmentor

    def other_labels(img):  # a toolkit that disagrees everywhere
        return np.full(img.shape[:2], 255), None

    out = tmp_path / 'x.onnx'
    lines = []
    with pytest.raises(RuntimeError, match="toolkit's labels on fewer than "
                       '99.9 % of the pixels at 64x96'):
        export_segmentor(deployed, out, (64, 96), toolkit=other_labels,
                         log=lines.append)
    assert 'at 64x96: 0.0000 % of pixels (6144 differ' in lines[-1]
    assert not list(tmp_path.iterdir())


def test_docs_list_every_metadata_key():
    from mmseg_repmlp.export import METADATA_SCHEMA

    from ..conftest import REPO
    docs = (REPO / 'docs' / 'export.md').read_text()
    assert [k for k in METADATA_SCHEMA if f'`{k}`' not in docs] == []


# Where the operators the graph uses change their form (Resize and Split at
# 13, ReduceMean and Pad at 18) and the ends of the range run by default
# (17, the default opset, is every other test's); the rest with the slow ones.
_OPSETS = [o if o in (11, 13, 18, 20) else
           pytest.param(o, marks=pytest.mark.slow) for o in range(11, 21)]


@pytest.mark.parametrize('opset', _OPSETS)
def test_every_supported_opset_gives_the_toolkits_labels(deployed, opset,
                                                         tmp_path):
    """The README's "opsets 11 to 20": each writes a dynamic graph with the
    test-time resize inside that passes every check of the exporter (PyTorch
    at two sizes, the toolkit's labels at a third) and says its opset."""
    from mmseg_repmlp.cli.export_onnx import toolkit_labels
    from mmseg_repmlp.export import export_segmentor, read_metadata

    out = tmp_path / f'opset{opset}.onnx'
    result = export_segmentor(deployed, out, (64, 96), dynamic=True,
                              opset=opset, toolkit=toolkit_labels(deployed),
                              agreement_at=[(97, 131)], log=lambda _: None)
    assert all(check['ok'] for check in result['checks'])
    # (the 4-iteration model has near ties: the exporter's own bar)
    assert [r['shape'] for r in result['agreement']] == [(97, 131)]
    assert result['agreement'][0]['equal_fraction'] >= 0.999
    model = onnx.load(str(out))
    assert [o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')
            ] == [opset]
    assert read_metadata(str(out))['opset'] == str(opset)


def test_a_graph_that_does_not_reproduce_pytorch_is_not_written(
        deployed, tmp_path, monkeypatch):
    """An exporter that changes the model (here: one logit channel shifted,
    as a wrongly folded layer would) is caught by the PyTorch check, and
    neither the file nor its temporary twin is left behind."""
    from mmseg_repmlp.export import export_segmentor
    from mmseg_repmlp.export import onnx as export_module

    real_export = export_module.export_onnx

    def broken_export(model, *args, **kwargs):
        model = copy.deepcopy(model)
        with torch.no_grad():
            model.decode_head.conv_seg.bias[0] += 5.0
        return real_export(model, *args, **kwargs)

    monkeypatch.setattr(export_module, 'export_onnx', broken_export)
    out = tmp_path / 'x.onnx'
    with pytest.raises(RuntimeError, match='does not reproduce the PyTorch '
                       'model at 64x96; nothing was written'):
        export_segmentor(deployed, out, (64, 96), log=lambda _: None)
    assert not list(tmp_path.iterdir())
