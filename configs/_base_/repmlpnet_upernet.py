# UPerNet + RepMLPNet: the model part shared by every config of this project.
# MMSegmentation's own UPerNet definition is inherited; only the backbone and
# the heads' input channels change.
_base_ = ['mmseg::_base_/models/upernet_r50.py']

custom_imports = dict(imports=['mmseg_repmlp'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='RepMLPNet',
        arch='B256',
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg,
        # Converted ImageNet weights; see tools/convert_official.py.
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/repmlpnet-b256_in1k.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768], norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=384, norm_cfg=norm_cfg))

# Every checkpoint also gets its re-parameterized (deploy) twin; a NaN/Inf
# loss stops the run before it is saved; --resume continues the random
# streams too.
custom_hooks = [
    dict(type='RepMLPDeployHook', verify=False),
    dict(type='StopOnNonFiniteLossHook'),
    dict(type='RNGStateHook'),
]
