"""Model name -> engine class (imported lazily, so serving Kokoro never imports transformers), and
each engine's settings section (a light pydantic module; the server holds one instance per model,
``settings.<section>``, and passes it to that model's engine alone)."""

from __future__ import annotations

import importlib
import re
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

from engines.cartesia.settings import CARTESIA_MODEL
from engines.errors import ModelNotFound
from engines.kokoro.settings import KOKORO_MODEL
from engines.orpheus.settings import ORPHEUS_MODEL

if TYPE_CHECKING:
    from engines.base import Engine


@dataclass(frozen=True)
class EngineSpec:
    model_id: str  # the canonical name clients send
    target: str  # "module:Class"
    settings: str  # "module:Class" of its settings section
    section: str  # its section's name: settings.<section>, env TTS_<SECTION>_<FIELD>, flags --<section>-<field>
    aliases: tuple[str, ...] = ()
    alias_pattern: str | None = None  # regex for families such as cartesia/sonic-2
    # Other model names it serves that /v1/models and /v1/voices list beside model_id (Together's list).
    listed: tuple[str, ...] = ()


ENGINES: tuple[EngineSpec, ...] = (
    EngineSpec(
        KOKORO_MODEL,
        "engines.kokoro.engine:KokoroEngine",
        "engines.kokoro.settings:KokoroSettings",
        "kokoro",
        aliases=("kokoro",),
    ),
    EngineSpec(
        ORPHEUS_MODEL,
        "engines.orpheus.engine:OrpheusEngine",
        "engines.orpheus.settings:OrpheusSettings",
        "orpheus",
        aliases=("orpheus",),
    ),
    EngineSpec(
        CARTESIA_MODEL,
        "engines.cartesia.engine:CartesiaEngine",
        "engines.cartesia.settings:CartesiaSettings",
        "cartesia",
        aliases=("sonic",),
        alias_pattern=r"cartesia/sonic(-[\w.-]+)?",
        listed=("cartesia/sonic-2", "cartesia/sonic-3"),
    ),
)

#: What the server loads when no model is named (TTS_MODELS).
DEFAULT_MODEL = ENGINES[0].model_id


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


def section_class(spec: EngineSpec) -> type[BaseModel]:
    """The settings class of ``spec``'s section (a light module: no engine code is imported)."""
    return _load(spec.settings)


def secret_fields(section: type[BaseModel]) -> frozenset[str]:
    """The fields of a settings class that hold secrets: those typed SecretStr (alone, optional or in a list)."""
    return frozenset(name for name, info in section.model_fields.items() if _holds_secret(info.annotation))


def _holds_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_holds_secret(arg) for arg in typing.get_args(annotation))


SECRET_MASK = "**********"


def public_settings(section: BaseModel) -> dict[str, Any]:
    """A section's effective values as JSON, each secret that is set replaced by a mask (for /stats and
    ``tts-server config``: a benchmark of a running server records how each model was configured)."""
    values = section.model_dump(mode="json")
    for name in secret_fields(type(section)):
        if values.get(name):
            values[name] = SECRET_MASK
    return values


def create_engine(name: str, section: BaseModel) -> Engine:
    """The engine for ``name`` built from its own settings section (``settings.<spec.section>``)."""
    model_id, cls = engine_class(name)
    return cls(model_id, section)
