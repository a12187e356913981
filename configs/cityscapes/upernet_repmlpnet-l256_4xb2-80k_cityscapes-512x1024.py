_base_ = ['./upernet_repmlpnet-b256_4xb2-80k_cityscapes-512x1024.py']
model = dict(
    backbone=dict(
        arch='L256',
        init_cfg=dict(checkpoint='pretrain/repmlpnet-l256_in1k.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
