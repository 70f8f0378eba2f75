"""Models: backbones (registered and timm), the incremental network, weights, pre-training,
and how a model runs on its hardware (device, precision). May import api/registry, data/.
"""
