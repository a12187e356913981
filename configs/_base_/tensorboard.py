# The TensorBoard switch: MMSegmentation's default runtime, logging through
# MMEngine's TensorboardVisBackend as well as to the local files (which
# tools/analysis/plot_run.py reads). To switch it on, replace
#     'mmseg::_base_/default_runtime.py'
# in a config's _base_ list by '../_base_/tensorboard.py' (one line; every
# config of this project lists that runtime), install `tensorboard` (pinned
# in requirements/tests.txt) and run
#     tensorboard --logdir WORK_DIR
# Scalars (losses, lr, val metrics) and the images the visualization hook
# paints go to WORK_DIR/<timestamp>/vis_data/events.out.tfevents.*.
# (A base cannot be added beside default_runtime.py: MMEngine refuses keys
# that two bases both define, and --cfg-options cannot write a list of
# dicts.)
_base_ = ['mmseg::_base_/default_runtime.py']
visualizer = dict(vis_backends=[
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
])
