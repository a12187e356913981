# The flagship under its short name: UPerNet + RepMLPNet-B256 on Cityscapes
# (upernet_repmlpnet-b256_4xb2-80k_cityscapes-512x1024.py).
_base_ = ['./upernet_repmlpnet-b256_4xb2-80k_cityscapes-512x1024.py']
