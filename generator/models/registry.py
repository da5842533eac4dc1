"""The model families, one line each; `load_model` dispatches on config.json's `model_type`.

Adding a family = one new module defining `FAMILY = Family(...)` + one `register_family` line.
"""

from __future__ import annotations

from generator.errors import ModelLoadError
from generator.models import bert, gpt2, llama
from generator.models.config import register_model_type, supported_model_types
from generator.models.family import Family

FAMILIES: dict[str, Family] = {}  # model_type -> family


def register_family(family: Family) -> None:
    """Make every model_type of `family` loadable."""
    for model_type in family.model_types:
        FAMILIES[model_type] = family
        register_model_type(model_type, family.parse)


def family_for(model_type: str) -> Family:
    """Return the family that runs `model_type`, or raise naming the supported ones."""
    if model_type not in FAMILIES:
        raise ModelLoadError(
            f"model_type {model_type!r} is not supported; supported: "
            f"{', '.join(supported_model_types())}"
        )
    return FAMILIES[model_type]


register_family(bert.FAMILY)
register_family(gpt2.FAMILY)
register_family(llama.FAMILY)
