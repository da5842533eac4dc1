"""Our Flax NNX implementations of transformer families, and checked checkpoint loading."""

from generator.models.bert import BertEncoder
from generator.models.config import ModelConfig, supported_model_types
from generator.models.loading import LoadedModel, load_model, read_safetensors
from generator.models.t5_config import T5Config  # registers model_type "t5"

__all__ = [
    "BertEncoder",
    "LoadedModel",
    "ModelConfig",
    "T5Config",
    "load_model",
    "read_safetensors",
    "supported_model_types",
]
