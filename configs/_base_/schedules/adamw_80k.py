# MMSegmentation's 80k schedule with this project's optimizer.
#
# AdamW as in MMSegmentation's UPerNet-Swin recipe, not the SGD of UPerNet-R50:
# RepMLPNet was pretrained with AdamW (lr 1e-3 per 256 images, wd 0.1) like
# Swin, and its window FCs and BN-heavy units are the transformer / MLP kind of
# network that recipe is tuned for. lr 6e-5 and wd 0.01, no decay on norms and
# biases; a 1500-iteration linear warm-up (keeps the freshly initialised heads
# from wrecking the pretrained fc3 weights early on), then linear (poly, power
# 1) decay to 0.
_base_ = ['mmseg::_base_/schedules/schedule_80k.py']
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=80000,
         by_epoch=False),
]
