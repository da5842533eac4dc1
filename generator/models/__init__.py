"""Our Flax NNX implementations of transformer families, and checked checkpoint loading."""

from generator.models.bert import BertEncoder
from generator.models.config import ModelConfig
from generator.models.loading import LoadedModel, load_model, read_safetensors
from generator.models.registry import parse_config, supported_model_types
from generator.models.t5_config import T5Config

__all__ = [
    "BertEncoder",
    "LoadedModel",
    "ModelConfig",
    "T5Config",
    "load_model",
    "parse_config",
    "read_safetensors",
    "supported_model_types",
]
