_base_ = ['./upernet_repmlpnet-b256_4xb2-80k_cityscapes-512x1024.py']
model = dict(
    backbone=dict(
        arch='D256',
        init_cfg=dict(checkpoint='pretrain/repmlpnet-d256_in1k.pth')),
    decode_head=dict(in_channels=[80, 160, 320, 640]),
    auxiliary_head=dict(in_channels=320))
