_base_ = ['./upernet_repmlpnet-b256_4xb2-80k_cityscapes-512x1024.py']
model = dict(
    backbone=dict(
        arch='T256',
        init_cfg=dict(checkpoint='pretrain/repmlpnet-t256_in1k.pth')),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
