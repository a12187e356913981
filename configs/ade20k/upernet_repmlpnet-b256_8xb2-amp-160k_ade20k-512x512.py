# UPerNet + RepMLPNet-B256 on ADE20K with bf16 mixed precision (autocast); see
# configs/cityscapes/upernet_repmlpnet-b256_4xb2-amp-80k_cityscapes-512x1024.py.
_base_ = ['./upernet_repmlpnet-b256_8xb2-160k_ade20k-512x512.py']
optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='bfloat16', loss_scale=dict(enabled=False))
