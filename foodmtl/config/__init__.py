"""Experiment configuration: the schema (``schema.py``), loading with ``_base_`` and overrides
(``loading.py``), value types (``types.py``) and the torch-free name check (``check.py``, ``names.py``).

Importing it imports no torch: a config is checked in well under a second.
"""
from foodmtl.config.loading import (changed, deep_merge, from_dict, load_config, parse_override, read_yaml, save_config,
                                    set_dotted, to_dict)
from foodmtl.config.schema import (Config, DataConfig, ModelConfig, OptimConfig, SourceConfig, TrackingConfig,
                                   TrainConfig, WeightingConfig, validate)

__all__ = ["Config", "DataConfig", "ModelConfig", "OptimConfig", "SourceConfig", "TrackingConfig", "TrainConfig",
           "WeightingConfig", "changed", "deep_merge", "from_dict", "load_config", "parse_override", "read_yaml", "save_config",
           "set_dotted", "to_dict", "validate"]
