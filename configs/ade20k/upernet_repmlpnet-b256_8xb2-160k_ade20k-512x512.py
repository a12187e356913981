# UPerNet + RepMLPNet-B256 on ADE20K, 512x512 crops (2x2 windows per stage),
# 160k iterations, 8 GPUs x 2 images, whole-image testing (short side 512; other
# sizes are padded inside the backbone's blocks).
_base_ = [
    '../_base_/repmlpnet_upernet.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/adamw_160k.py',
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150))
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
