"""Model name -> engine class, imported lazily so that serving Kokoro never imports transformers."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.errors import ModelNotFound

if TYPE_CHECKING:
    from engines.base import Engine
    from server.settings import Settings


@dataclass(frozen=True)
class EngineSpec:
    model_id: str  # the canonical name clients send
    target: str  # "module:Class"
    aliases: tuple[str, ...] = ()
    alias_pattern: str | None = None  # regex for families such as cartesia/sonic-2


ENGINES: tuple[EngineSpec, ...] = (
    EngineSpec("hexgrad/Kokoro-82M", "engines.kokoro.engine:KokoroEngine", aliases=("kokoro",)),
    EngineSpec("canopylabs/orpheus-3b-0.1-ft", "engines.orpheus.engine:OrpheusEngine", aliases=("orpheus",)),
    EngineSpec(
        "cartesia/sonic",
        "engines.cartesia.engine:CartesiaEngine",
        aliases=("sonic",),
        alias_pattern=r"cartesia/sonic(-[\w.-]+)?",
    ),
)


def resolve(name: str) -> EngineSpec:
    """Find the engine spec for a model name or alias (case-insensitive)."""
    key = name.strip().lower()
    for spec in ENGINES:
        if key == spec.model_id.lower() or key in spec.aliases:
            return spec
        if spec.alias_pattern and re.fullmatch(spec.alias_pattern, key):
            return spec
    known = ", ".join(s.model_id for s in ENGINES)
    raise ModelNotFound(f"Model '{name}' is not served here. Known models: {known}.")


def engine_class(name: str) -> tuple[str, type[Engine]]:
    """The canonical model id and the engine class for ``name``, importing its module now."""
    spec = resolve(name)
    module_name, _, class_name = spec.target.partition(":")
    return spec.model_id, getattr(importlib.import_module(module_name), class_name)


def create_engine(name: str, settings: Settings) -> Engine:
    model_id, cls = engine_class(name)
    return cls(model_id, settings)
