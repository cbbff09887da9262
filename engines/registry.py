"""Model name -> engine class (imported lazily, so serving Kokoro never imports transformers), and
each engine's settings section (light pydantic modules, imported eagerly to build the server's settings)."""

from __future__ import annotations

import importlib
import re
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

from engines.errors import ModelNotFound

if TYPE_CHECKING:
    from engines.base import Engine


@dataclass(frozen=True)
class EngineSpec:
    model_id: str  # the canonical name clients send
    target: str  # "module:Class"
    settings: str  # "module:Class" of its settings section
    aliases: tuple[str, ...] = ()
    alias_pattern: str | None = None  # regex for families such as cartesia/sonic-2
    # Other model names it serves that /v1/models and /v1/voices list beside model_id (Together's list).
    listed: tuple[str, ...] = ()


ENGINES: tuple[EngineSpec, ...] = (
    EngineSpec(
        "hexgrad/Kokoro-82M",
        "engines.kokoro.engine:KokoroEngine",
        "engines.kokoro.settings:KokoroSettings",
        aliases=("kokoro",),
    ),
    EngineSpec(
        "canopylabs/orpheus-3b-0.1-ft",
        "engines.orpheus.engine:OrpheusEngine",
        "engines.orpheus.settings:OrpheusSettings",
        aliases=("orpheus",),
    ),
    EngineSpec(
        "cartesia/sonic",
        "engines.cartesia.engine:CartesiaEngine",
        "engines.cartesia.settings:CartesiaSettings",
        aliases=("sonic",),
        alias_pattern=r"cartesia/sonic(-[\w.-]+)?",
        listed=("cartesia/sonic-2", "cartesia/sonic-3"),
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


def listed_names(model_id: str) -> tuple[str, ...]:
    """The names a served model is listed under: its own, then the family members it also serves."""
    for spec in ENGINES:
        if spec.model_id == model_id:
            return (spec.model_id, *spec.listed)
    return (model_id,)  # an engine the registry does not list (injected by an embedding app)


def _load(target: str):
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def engine_class(name: str) -> tuple[str, type[Engine]]:
    """The canonical model id and the engine class for ``name``, importing its module now."""
    spec = resolve(name)
    return spec.model_id, _load(spec.target)


def settings_sections() -> tuple[type[BaseModel], ...]:
    """Every engine's settings class, for the server to compose into its own settings."""
    return tuple(_load(spec.settings) for spec in ENGINES)


def settings_of(name: str, settings: BaseModel) -> dict[str, Any]:
    """The values of ``name``'s settings section within ``settings``, secrets left out (for /stats,
    so a benchmark of a running server records how it was configured)."""
    try:
        section = _load(resolve(name).settings)
    except ModelNotFound:  # an engine the registry does not list (injected by an embedding app)
        return {}
    public = {
        field
        for field, info in section.model_fields.items()
        if info.annotation is not SecretStr and SecretStr not in typing.get_args(info.annotation)
    }
    return settings.model_dump(mode="json", include=public)


def create_engine(name: str, settings: BaseModel) -> Engine:
    model_id, cls = engine_class(name)
    return cls(model_id, settings)
