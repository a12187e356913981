_base_ = ['./upernet_repmlpnet-b256_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        arch='D256',
        init_cfg=dict(checkpoint='pretrain/repmlpnet-d256_in1k.pth')),
    decode_head=dict(in_channels=[80, 160, 320, 640]),
    auxiliary_head=dict(in_channels=320))
