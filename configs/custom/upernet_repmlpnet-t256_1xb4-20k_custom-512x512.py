# Template: UPerNet + RepMLPNet-T256 on your own dataset, in MMSegmentation's
# custom layout:
#
#   <data_root>/img_dir/{train,val}/xxx<img_suffix>
#   <data_root>/ann_dir/{train,val}/xxx<seg_map_suffix>   (class index per pixel)
#
# Copy this file anywhere (see "Your own dataset" in the README for the
# `_base_` paths of a config outside this repository) and edit the block
# below. `tools/train.py` checks before training that the folders, images and
# label maps are there, that the label ids are classes and that the heads
# predict as many classes as the dataset has.
_base_ = [
    '../_base_/repmlpnet_upernet.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/adamw_80k.py',
]

# --- edit: your data ---------------------------------------------------------
data_root = 'data/my_dataset'
classes = ('background', 'square', 'disc')
palette = [[0, 0, 0], [220, 20, 60], [0, 0, 142]]  # RGB, one per class
img_suffix = '.png'
seg_map_suffix = '.png'
# True when 0 in the label maps means "unlabelled" and classes are 1..N.
reduce_zero_label = False
crop_size = (512, 512)
image_scale = (2048, 512)  # (w, h) the images are resized to
max_iters = 20000
# -----------------------------------------------------------------------------

num_classes = len(classes)
metainfo = dict(classes=classes, palette=palette)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='T256',
        init_cfg=dict(checkpoint='pretrain/repmlpnet-t256_in1k.pth')),
    decode_head=dict(in_channels=[64, 128, 256, 512], num_classes=num_classes),
    auxiliary_head=dict(in_channels=256, num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=reduce_zero_label),
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
    dict(type='LoadAnnotations', reduce_zero_label=reduce_zero_label),
    dict(type='PackSegInputs')
]


def _dataset(split, pipeline):
    return dict(
        type='BaseSegDataset',
        data_root=data_root,
        metainfo=metainfo,
        img_suffix=img_suffix,
        seg_map_suffix=seg_map_suffix,
        reduce_zero_label=reduce_zero_label,
        data_prefix=dict(
            img_path=f'img_dir/{split}', seg_map_path=f'ann_dir/{split}'),
        pipeline=pipeline)


train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=_dataset('train', train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_dataset('val', test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# The schedule of adamw_80k.py, shortened.
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=max_iters,
         by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=2000)
default_hooks = dict(checkpoint=dict(interval=2000))
