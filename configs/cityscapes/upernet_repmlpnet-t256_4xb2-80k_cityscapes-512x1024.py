_base_ = ['./upernet_repmlpnet.py']
model = dict(
    backbone=dict(
        arch='T256',
        init_cfg=dict(checkpoint='pretrain/repmlpnet-t256_in1k.pth')),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
