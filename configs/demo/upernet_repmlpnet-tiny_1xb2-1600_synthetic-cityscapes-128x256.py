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
    decode_head=dict(
        in_channels=[32, 64, 128, 192],
        channels=64,
        # Thin and rare classes (pole, traffic sign, person: 0.4-1.4% of the
        # train pixels) stayed at 0 IoU with the plain loss. Two standard
        # remedies, both measured on this data (README, Demo):
        # - OHEM: the loss of each batch is taken over the pixels predicted
        #   with a probability under 0.7, at least 6500 (10% of 2 crops of
        #   128x256), so the easy road/sky/building pixels stop dominating;
        # - class weights sqrt(1 / ln(1.02 + p)), p = a class's share of the
        #   pixels of the 40 generated train images (classes the data lacks:
        #   1): the square root of ENet's weights, whose full strength made
        #   car, pole and sign over-predicted (their IoU fell while their
        #   recall rose). Traffic sign (9.0) and person (12.0) are raised
        #   above their square-root weights (6.5, 5.8): at 1600 steps on one
        #   core, person went from 18.6 to 27.9 IoU, sign from 35.3 to 36.4
        #   and mIoU from 70.8 to 71.8 (docs/demo_recipe.md). The loss is
        #   ClassWeightedCrossEntropyLoss, as
        #   MMSegmentation 1.2.2's CrossEntropyLoss stops with an IndexError
        #   on class weights with ignored pixels (the ego vehicle's 255).
        sampler=dict(type='OHEMPixelSampler', thresh=0.7, min_kept=6500),
        loss_decode=dict(
            type='ClassWeightedCrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True,
            class_weight=[
                2.0, 2.9, 1.8, 1.0, 1.0, 5.5, 1.0, 9.0, 2.6, 5.7, 3.2, 12.0,
                1.0, 3.8, 1.0, 1.0, 1.0, 1.0, 1.0
            ])),
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
# Batches of 2 crops for twice the steps of batches of 4 in the same time:
# at equal compute (with ENet's full class weights), 600 steps of 2 learned
# the thin classes (pole 27 IoU, traffic sign 27) where 300 steps of 4 did
# not (pole 9, traffic sign 2). 2 is the least: with 1 crop, the
# 1x1 pooling of the decode head's PPM gives its BatchNorm one value.
# `tools/test.py --tta` (and `tools/analysis/plot_run.py --tta`, which the
# demo runs) use MMSegmentation's Cityscapes tta_pipeline from the dataset
# base: the image at 0.5 to 1.75 times its size, each also flipped, the 12
# predictions averaged (SegTTAModel). On the demo's deploy model it gave
# 74.3 val mIoU against 70.6 on whole images, traffic sign 32.1 against
# 25.6, person 33.9 against 24.6, at about 17 times the test's compute
# (docs/demo_recipe.md).
train_dataloader = dict(
    batch_size=2,
    num_workers=1,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

# From scratch, so a larger lr than the fine-tuning recipe; same shape.
# 1600 steps: at 1100 the thin classes were still learning (mIoU 67.4 at
# 1100, 70.8 at 1600, 72.4 at 2000 on one core, docs/demo_recipe.md); 1600
# keeps the demo within 6 minutes on 2 cores.
max_iters = 1600
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999),
                   weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
warmup = max_iters // 10
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=warmup),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=warmup, end=max_iters,
         by_epoch=False),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=400)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=400,
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
