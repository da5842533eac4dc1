"""The model families, one line each; `load_model` dispatches on config.json's `model_type`.

Adding a family = one new module defining `FAMILY = Family(...)` + one `register_family` line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from generator.errors import ModelLoadError
from generator.models import albert, bert, gpt2, llama, t5_loading, xlnet
from generator.models.config import ArchitectureConfig
from generator.models.family import Family

FAMILIES: dict[str, Family] = {}  # model_type -> family
PARSERS: dict[str, Callable[[dict[str, Any]], ArchitectureConfig]] = {}  # model_type -> parser


def register_model_type(
    model_type: str, parser: Callable[[dict[str, Any]], ArchitectureConfig]
) -> None:
    """Register `parser` as the reader of config.json dicts whose model_type is `model_type`."""
    PARSERS[model_type] = parser


def supported_model_types() -> tuple[str, ...]:
    """Return the model_type values that `parse_config` accepts, sorted."""
    return tuple(sorted(PARSERS))


def parse_config(cfg: dict[str, Any]) -> ArchitectureConfig:
    """Build the config of a parsed Hugging Face `config.json` with its family's parser.

    Returns:
        The matching config (without heads: the loader adds those it finds).

    Raises:
        ModelLoadError: unsupported `model_type`, or a missing or invalid setting.
    """
    model_type = cfg.get("model_type")
    parser = PARSERS.get(model_type)
    if parser is None:
        raise ModelLoadError(
            f"model_type {model_type!r} is not supported; supported: "
            f"{', '.join(supported_model_types())}"
        )
    return parser(cfg)


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
register_family(albert.FAMILY)
register_family(xlnet.FAMILY)
register_family(t5_loading.FAMILY)
