# The flagship under MMSegmentation's naming convention.
_base_ = ['./upernet_repmlpnet.py']
