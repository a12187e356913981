# The built-in demo (`make demo`): a small RepMLPNet-UPerNet trained from
# scratch on 2 CPU cores, on a generated dataset in the real Cityscapes layout
# (tools/dataset_converters/make_synthetic_cityscapes.py, then
# tools/dataset_converters/cityscapes.py), read by MMSegmentation's own
# CityscapesDataset. Everything else is the flagship recipe's machinery:
# UPerNet + FCN auxiliary head, whole-image testing, the deploy hook.
_base_ = [
    '../_base_/repmlpnet_upernet.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
]
data_root = 'work_dirs/demo/data/cityscapes'
crop_size = (128, 256)
image_scale = (512, 256)  # the generated images' size (w, h)

# Windows: a 128x256 crop gives 2x4 windows in every stage; a whole
# 256x512 image 4x8.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(
            _delete_=True,
            channels=(32, 64, 128, 192),
            depths=(1, 1, 2, 1),
            window_sizes=(16, 8, 4, 2),
            sharesets=(1, 4, 8, 16)),
        init_cfg=None),
    decode_head=dict(in_channels=[32, 64, 128, 192], channels=64),
    auxiliary_head=dict(in_channels=128, channels=32))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=image_scale,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

# From scratch, so a larger lr than the fine-tuning recipe; same shape.
max_iters = 600
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999),
                   weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=50, end=max_iters,
         by_epoch=False),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=200)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=200,
        max_keep_ckpts=2,
        save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Paints ground truth | prediction of every 5th val image at each
    # validation, into <work_dir>/<timestamp>/vis_data/vis_image/ (and
    # TensorBoard's Images tab with configs/_base_/tensorboard.py). Off, the
    # hook only warns that it is off.
    visualization=dict(type='SegVisualizationHook', draw=True, interval=5))
custom_hooks = [
    dict(type='RepMLPDeployHook', verify=True),
    dict(type='StopOnNonFiniteLossHook'),
    dict(type='RNGStateHook'),
]
randomness = dict(seed=0)
