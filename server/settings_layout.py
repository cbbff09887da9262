"""How each model's settings section is named and where its values come from.

Every model served here has a section of its own (``settings.kokoro``, ``settings.orpheus``,
``settings.cartesia``; the names are :attr:`engines.registry.EngineSpec.section`), built from the
engine's own settings class. One pattern names every field ``<field>`` of section ``<section>``:

* environment ``TTS_<SECTION>_<FIELD>`` (``TTS_KOKORO_DEVICE=cuda:1``), plus any older names the
  section class lists in ``ENV_ALIASES`` (``TTS_SNAC_SOURCE``, ``CARTESIA_API_KEY``);
* flag ``--<section>-<field>`` (``--orpheus-max-batch-size 16``);
* keyword ``Settings(<section>_<field>=...)`` (what the flag becomes), or an alias's name as it is.

The fields every local model has (:class:`engines.settings.EngineDefaults`: ``device``, ``dtype``,
``max_batch_size``, ``max_queue_size``...) also exist flat on the server's settings
(``TTS_DEVICE``, ``--device``): a default every section inherits unless it sets its own.

Precedence, highest first, for one field of one section:

1. the section's flag (keyword),
2. the section's environment variable (then its aliases, in order),
3. the flat flag (keyword),
4. the flat environment variable,
5. the section class's own default (e.g. Orpheus's ``segment_chars`` is 200 where the flat one is 400).

So a section-specific name always beats the flat name, and for the same name a flag beats the
environment. Secrets (fields typed ``SecretStr``) come from the environment only: a flag would put
them in every ``ps`` listing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from engines import registry
from engines.settings import EngineDefaults

#: Flat fields that are also defaults for every section having a field of the same name.
INHERITED_FIELDS = frozenset(EngineDefaults.model_fields)


@dataclass(frozen=True)
class SectionField:
    """One field of one model's section and every name it goes by."""

    section: str  # "kokoro"
    name: str  # "device" (the attribute on the section object)
    info: FieldInfo
    secret: bool
    aliases: tuple[str, ...] = ()  # older environment names (ENV_ALIASES)

    @property
    def keyword(self) -> str:
        return f"{self.section}_{self.name}"

    @property
    def flag(self) -> str:
        return "--" + self.keyword.replace("_", "-")

    @property
    def env_names(self) -> tuple[str, ...]:
        return (f"TTS_{self.keyword.upper()}", *self.aliases)

    @property
    def inherits(self) -> str | None:
        """The flat field this one defaults to, if any."""
        return self.name if self.name in INHERITED_FIELDS else None


def sections() -> Iterator[tuple[str, type[BaseModel]]]:
    """(section name, settings class) of every engine the registry lists, in its order."""
    for spec in registry.ENGINES:
        yield spec.section, registry.section_class(spec)


def section_fields(section: str, cls: type[BaseModel]) -> list[SectionField]:
    aliases: dict[str, tuple[str, ...]] = getattr(cls, "ENV_ALIASES", {})
    secrets = registry.secret_fields(cls)
    return [
        SectionField(section, name, info, name in secrets, aliases.get(name, ()))
        for name, info in cls.model_fields.items()
    ]


def all_section_fields() -> list[SectionField]:
    return [field for section, cls in sections() for field in section_fields(section, cls)]


def section_values(
    section: str, cls: type[BaseModel], data: Mapping[str, Any], environ: Mapping[str, str]
) -> dict[str, Any]:
    """The raw values of one section, by the precedence above (validation happens in its class).

    ``data`` holds the keywords the Settings was built with and the flat fields already read from the
    environment (what pydantic-settings hands a before-validator); ``environ`` is upper-cased. A
    field found nowhere is left out, so the section class's own default applies.
    """
    values: dict[str, Any] = {}
    for field in section_fields(section, cls):
        keyword = next((name for name in (field.keyword, *field.aliases) if name in data), None)
        if keyword is not None:  # an alias as a keyword too: Settings(CARTESIA_API_KEY=...) as before
            values[field.name] = data[keyword]
            continue
        env = next((environ[name] for name in field.env_names if name in environ), None)
        if env is not None:
            values[field.name] = env
        elif field.inherits is not None and data.get(field.inherits) is not None:
            values[field.name] = data[field.inherits]
    return values


def upper_environ() -> dict[str, str]:
    """The process environment with upper-cased names (names are case-insensitive, as for the flat fields)."""
    return {name.upper(): value for name, value in os.environ.items()}
