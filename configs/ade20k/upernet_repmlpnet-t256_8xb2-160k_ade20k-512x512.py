_base_ = ['./upernet_repmlpnet-b256_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        arch='T256',
        init_cfg=dict(checkpoint='pretrain/repmlpnet-t256_in1k.pth')),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
