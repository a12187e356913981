"""tools/train.py and tools/test.py end to end on a tiny generated dataset."""
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from ..conftest import CONFIG, REPO, run, tool, train_options


def _miou(output: str) -> float:
    found = re.findall(r'mIoU: ([0-9.]+)', output)
    assert found, output[-2000:]
    return float(found[-1])


def _test_tool_runs(runs, data_root, tmp_path):
    """``tools/test.py`` once per ``(kind, checkpoint, extra args)``: each
    kind's mIoU, label maps (sorted paths) and log."""
    results = {}
    for kind, ckpt, extra in runs:
        out = tmp_path / kind
        done = run([*tool('test.py'), CONFIG, ckpt, '--work-dir',
                    tmp_path / f'{kind}_work', '--out', out, *extra,
                    '--cfg-options',
                    f'test_dataloader.dataset.data_root={data_root}'])
        log = done.stdout + done.stderr
        results[kind] = (_miou(log), sorted(out.rglob('*.png')), log)
    return results


def test_training_writes_checkpoints_and_deploy_twins(trained):
    work, log = trained
    files = {p.name for p in work.iterdir() if p.is_file()}
    best = [f for f in files
            if f.startswith('best_mIoU_') and not f.endswith('_deploy.pth')]
    assert len(best) == 1
    expected = {'iter_4.pth', 'iter_4_deploy.pth', best[0],
                best[0].replace('.pth', '_deploy.pth'), 'last_checkpoint'}
    assert expected <= files
    # max_keep_ckpts=1 removed iter_2.pth, and its twin went with it.
    assert 'iter_2.pth' not in files and 'iter_2_deploy.pth' not in files
    assert not [f for f in files if f.endswith('.tmp')]
    assert 'Deploy checkpoint' in log and 'verified' in log
    # Each checkpoint is converted once, even when MMEngine saves the last
    # one again after a new best; MMSegmentation's notes on building the
    # losses are not repeated for every conversion.
    written = re.findall(r'Deploy checkpoint (\S+) written', log)
    assert len(written) == len(set(written)) >= 3, written
    assert log.count('UserWarning: ``build_loss``') <= 1
    assert 'Converting a tensor with requires_grad=True' not in log


def test_deploy_checkpoint_is_plain_and_self_describing(trained):
    work, _ = trained
    path = work / 'iter_4_deploy.pth'
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    ckpt = torch.load(path, weights_only=True)
    meta = ckpt['meta']
    assert meta['deploy'] is True and meta['iter'] == 4
    assert meta['source'] == 'iter_4.pth'
    assert meta['verified_rel_diff'] <= 1e-4
    assert 'deploy=True' in meta['cfg']
    assert meta['dataset_meta']['classes'][0] == 'road'
    keys = set(ckpt['state_dict'])
    assert not any('fc3_bn' in k or 'repconv' in k or 'prebn2' in k
                   for k in keys)
    assert 'optimizer' not in ckpt and 'message_hub' not in ckpt


def test_resume_continues_from_the_last_checkpoint(trained, tiny_cityscapes,
                                                   tmp_path):
    work, _ = trained
    resumed = tmp_path / 'resumed'
    shutil.copytree(work, resumed)
    (resumed / 'last_checkpoint').write_text(str(resumed / 'iter_4.pth'))
    done = run([*tool('train.py'), CONFIG, '--work-dir', resumed, '--resume',
                *train_options(tiny_cityscapes, 6, 2)])
    log = done.stdout + done.stderr
    assert 'resumed epoch: 0, iter: 4' in log
    assert 'Iter(train) [5/6]' in log and 'Iter(train) [1/6]' not in log
    assert (resumed / 'iter_6.pth').is_file()
    assert (resumed / 'iter_6_deploy.pth').is_file()


def test_test_tool_gives_the_same_miou_and_labels_for_both_structures(
        spread, tiny_cityscapes, tmp_path):
    """Training-time and deploy checkpoints, and the deploy one in bf16."""
    train_ckpt, deploy_ckpt = spread
    results = _test_tool_runs((('train', train_ckpt, []),
                               ('deploy', deploy_ckpt, []),
                               ('bf16', deploy_ckpt, ['--dtype', 'bf16'])),
                              tiny_cityscapes, tmp_path)
    # The spread model predicts many classes with almost no near ties
    # (tests/conftest.py): its two structures differ by float rounding
    # only, which decides the label of at most a few pixels.
    assert abs(results['train'][0] - results['deploy'][0]) <= 0.01
    train_maps, deploy_maps = results['train'][1], results['deploy'][1]
    assert len(train_maps) == 2 and len(deploy_maps) == 2
    for a, b in zip(train_maps, deploy_maps):
        assert a.name == b.name
        a, b = np.asarray(Image.open(a)), np.asarray(Image.open(b))
        assert len(np.unique(a)) >= 4
        assert (a == b).mean() >= 0.9995
    # --dtype bf16 runs the fast path (accelerate) at bf16 precision: the
    # same segmentation up to that precision, logits within about 2% of
    # their scale, which moves about 2% of this model's labels.
    assert "fast inference: dict(compile=False, cuda_graph=False, " \
        "dtype='bfloat16')" in results['bf16'][2]
    assert 'fast inference' not in results['deploy'][2]
    assert abs(results['bf16'][0] - results['deploy'][0]) <= 1.0
    for a, b in zip(deploy_maps, results['bf16'][1]):
        same = np.asarray(Image.open(a)) == np.asarray(Image.open(b))
        assert same.mean() >= 0.95


def test_test_tool_tta_tests_either_structure(spread, tiny_cityscapes,
                                              tmp_path):
    """``--tta`` (the demo's second test): MMSegmentation's multi-scale +
    flip testing around the deploy segmentor the checkpoint records gives
    the training structure's labels, and not the single-scale ones."""
    train_ckpt, deploy_ckpt = spread
    results = _test_tool_runs((('train', train_ckpt, ['--tta']),
                               ('deploy', deploy_ckpt, ['--tta']),
                               ('single', deploy_ckpt, [])),
                              tiny_cityscapes, tmp_path)
    assert abs(results['train'][0] - results['deploy'][0]) <= 0.01
    maps = {kind: [np.asarray(Image.open(p)) for p in result[1]]
            for kind, result in results.items()}
    assert len(maps['deploy']) == len(maps['single']) == 2
    for train, deploy, single in zip(maps['train'], maps['deploy'],
                                     maps['single'], strict=True):
        assert deploy.shape == single.shape
        assert (train == deploy).mean() >= 0.9995
        # Twelve averaged predictions move some labels of this model.
        assert (deploy != single).mean() >= 0.01


@pytest.mark.slow  # inductor compiles the segmentor: minutes on 2 cores
def test_test_tool_compile_gives_the_eager_segmentation(spread,
                                                        tiny_cityscapes,
                                                        tmp_path):
    _, deploy_ckpt = spread
    results = _test_tool_runs((('eager', deploy_ckpt, []),
                               ('compile', deploy_ckpt, ['--compile'])),
                              tiny_cityscapes, tmp_path)
    assert "fast inference: dict(compile=True, cuda_graph=False, " \
        "dtype='float32')" in results['compile'][2]
    # Inductor's kernels round differently; nothing else changes.
    assert abs(results['compile'][0] - results['eager'][0]) <= 0.01
    for a, b in zip(results['eager'][1], results['compile'][1], strict=True):
        a, b = np.asarray(Image.open(a)), np.asarray(Image.open(b))
        assert len(np.unique(a)) >= 4
        assert (a == b).mean() >= 0.9995


@pytest.mark.cuda
def test_test_tool_replays_cuda_graphs(trained, tiny_cityscapes, tmp_path):
    """On a GPU (where ``trained`` trained on it too): --cuda-graph gives
    the eager mIoU and label maps, in fp32 and under bf16 autocast."""
    work, _ = trained
    ckpt = work / 'iter_4_deploy.pth'
    results = _test_tool_runs(
        (('eager', ckpt, []), ('graph', ckpt, ['--cuda-graph']),
         ('graph_bf16', ckpt, ['--cuda-graph', '--dtype', 'bf16'])),
        tiny_cityscapes, tmp_path)
    assert "fast inference: dict(compile=False, cuda_graph=True, " \
        "dtype='float32')" in results['graph'][2]
    assert abs(results['graph'][0] - results['eager'][0]) <= 0.05
    assert abs(results['graph_bf16'][0] - results['eager'][0]) <= 1.0
    for kind, least in (('graph', 0.999), ('graph_bf16', 0.98)):
        for a, b in zip(results['eager'][1], results[kind][1], strict=True):
            same = np.asarray(Image.open(a)) == np.asarray(Image.open(b))
            assert same.mean() >= least, kind


@pytest.mark.cuda
def test_amp_training_on_a_gpu(tiny_cityscapes, tmp_path):
    """--amp: MMSegmentation's fp16 with dynamic loss scaling, end to end
    (MMEngine refuses it without CUDA: tests/test_cli/test_train.py)."""
    work = tmp_path / 'amp'
    done = run([*tool('train.py'), CONFIG, '--work-dir', work, '--amp',
                *train_options(tiny_cityscapes, 2, 2)])
    log = done.stdout + done.stderr
    assert 'AmpOptimWrapper' in log
    assert (work / 'iter_2.pth').is_file()
    assert (work / 'iter_2_deploy.pth').is_file()
    state = torch.load(work / 'iter_2.pth')
    assert 'loss_scaler' in state['optimizer']  # AmpOptimWrapper's state
    assert all(torch.isfinite(v).all() for v in state['state_dict'].values()
               if v.is_floating_point())


def test_test_tool_refuses_a_checkpoint_of_another_model(trained, tmp_path,
                                                         tiny_cityscapes):
    work, _ = trained
    done = run([*tool('test.py'), CONFIG, work / 'iter_4.pth', '--work-dir',
                tmp_path, '--cfg-options', 'model.decode_head.channels=48',
                f'test_dataloader.dataset.data_root={tiny_cityscapes}'],
               check=False)
    assert done.returncode != 0
    assert 'does not match the model' in done.stderr
    assert 'decode_head.conv_seg.weight' in done.stderr


def test_missing_pretrained_weights_stop_training_at_once(tmp_path):
    config = REPO / 'configs' / 'cityscapes' / 'upernet_repmlpnet.py'
    done = run([*tool('train.py'), config, '--work-dir', tmp_path],
               cwd=tmp_path, check=False, timeout=120)
    assert done.returncode != 0
    err = done.stderr
    assert "pretrain/repmlpnet-b256_in1k.pth" in err
    assert 'tools/convert_official.py RepMLPNet-B256-train' in err
    assert 'model.backbone.init_cfg=None' in err
    # The dataset is missing too, and the same message says so.
    assert 'data/cityscapes/leftImg8bit/train' in err
    assert 'tools/dataset_converters/cityscapes.py' in err
    assert not list(tmp_path.glob('*.pth'))


def test_missing_dataset_says_which_folder_and_how_to_prepare(tmp_path):
    config = REPO / 'configs' / 'ade20k' / \
        'upernet_repmlpnet-b256_8xb2-160k_ade20k-512x512.py'
    done = run([*tool('train.py'), config, '--work-dir', tmp_path,
                '--cfg-options', 'model.backbone.init_cfg=None'],
               cwd=tmp_path, check=False, timeout=120)
    assert done.returncode != 0
    assert 'data/ade/ADEChallengeData2016/images/training' in done.stderr
    assert 'ADEChallengeData2016.zip' in done.stderr
    assert 'Pretrained' not in done.stderr


def _val_image(root):
    return sorted((root / 'leftImg8bit' / 'val').rglob('*.png'))[0]


def test_reparam_tool_verifies_on_an_image(trained, tiny_cityscapes,
                                           tmp_path):
    work, _ = trained
    out = tmp_path / 'offline_deploy.pth'
    image = _val_image(tiny_cityscapes)
    done = run([*tool('reparam.py'), CONFIG, work / 'iter_4.pth', out,
                '--verify', image])
    assert 'label maps identical' in done.stdout
    offline = torch.load(out, weights_only=True)
    by_hook = torch.load(work / 'iter_4_deploy.pth', weights_only=True)
    assert offline['meta']['deploy'] is True
    assert offline['state_dict'].keys() == by_hook['state_dict'].keys()
    for key, value in by_hook['state_dict'].items():
        assert torch.equal(offline['state_dict'][key], value), key
    again = run([*tool('reparam.py'), CONFIG, work / 'iter_4.pth', out],
                check=False)
    assert again.returncode != 0 and '--force' in again.stderr
    deployed_again = run([*tool('reparam.py'), CONFIG,
                          work / 'iter_4_deploy.pth', tmp_path / 'x.pth'],
                         check=False)
    assert 'already a deploy checkpoint' in deployed_again.stderr


def test_image_demo_writes_an_overlay(trained, tiny_cityscapes, tmp_path):
    work, _ = trained
    image = _val_image(tiny_cityscapes)
    out = tmp_path / 'overlay.png'
    run([*tool('image_demo.py'), image, CONFIG, work / 'iter_4_deploy.pth',
         '--out-file', out])
    overlay = np.asarray(Image.open(out))
    assert overlay.shape[:2] == np.asarray(Image.open(image)).shape[:2]


def test_empty_dataset_folder_is_named(tmp_path):
    root = tmp_path / 'cityscapes'
    for sub in ('leftImg8bit/train', 'gtFine/train', 'leftImg8bit/val',
                'gtFine/val'):
        (root / sub).mkdir(parents=True)
    done = run([*tool('train.py'), CONFIG, '--work-dir', tmp_path / 'w',
                '--cfg-options', f'train_dataloader.dataset.data_root={root}',
                f'val_dataloader.dataset.data_root={root}'],
               check=False, timeout=120)
    assert done.returncode != 0
    assert 'leftImg8bit/train' in done.stderr
    assert 'has no *_leftImg8bit.png images' in done.stderr


def test_label_problems_are_named_before_training(tiny_cityscapes, tmp_path):
    import shutil
    root = tmp_path / 'cityscapes'
    shutil.copytree(tiny_cityscapes, root)
    labels = sorted((root / 'gtFine' / 'train').rglob('*_labelTrainIds.png'))
    bad = np.asarray(Image.open(labels[0])).copy()
    bad[:4, :4] = 33  # a Cityscapes labelId, not a trainId
    Image.fromarray(bad).save(labels[0])
    opts = [f'{s}_dataloader.dataset.data_root={root}'
            for s in ('train', 'val')]
    done = run([*tool('train.py'), CONFIG, '--work-dir', tmp_path / 'w',
                '--cfg-options', *opts], check=False, timeout=120)
    assert done.returncode != 0
    assert 'has ids [33] outside the 19 classes' in done.stderr
    assert labels[0].name in done.stderr
    labels[1].unlink()
    done = run([*tool('train.py'), CONFIG, '--work-dir', tmp_path / 'w',
                '--cfg-options', *opts], check=False, timeout=120)
    assert '1 of 4 images' in done.stderr and 'have no label map' in \
        done.stderr
    assert labels[1].name in done.stderr
