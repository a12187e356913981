# The flagship with bf16 mixed precision (autocast): convolutions, window FCs
# and heads run in bf16 on tensor cores; weights, optimizer state and BN
# statistics stay fp32. bf16 keeps fp32's exponent range, so no loss scaling
# (and none of its per-step overflow checks). Needs a GPU with bf16 (Ampere or
# newer); the deploy checkpoints it exports are fp32 like any other.
_base_ = ['./upernet_repmlpnet-b256_4xb2-80k_cityscapes-512x1024.py']
optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='bfloat16', loss_scale=dict(enabled=False))
