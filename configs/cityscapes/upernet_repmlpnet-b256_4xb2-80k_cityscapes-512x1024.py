# Flagship: UPerNet + RepMLPNet-B256 on Cityscapes, 512x1024 crops, 80k iters,
# whole-image 1024x2048 testing, 4 GPUs x 2 images.
_base_ = [
    '../_base_/repmlpnet_upernet.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/adamw_80k.py',
]
crop_size = (512, 1024)
# 512x1024 is 2x4 windows in every stage of the 256 variants: no padding.
model = dict(data_preprocessor=dict(size=crop_size))

train_dataloader = dict(batch_size=2)
# Scale the lr linearly when the total batch differs from 4 GPUs x 2 images.
auto_scale_lr = dict(enable=False, base_batch_size=8)
