"""The registry of segmentation decoders: name -> ``cls(channels, reductions, num_classes, options)``."""
from foodmtl.utils.registry import Registry

DECODERS: Registry = Registry("segmentation decoder")
