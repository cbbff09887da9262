"""The server's one settings object.

Every field is read from an environment variable ``TTS_<FIELD>`` (e.g. ``TTS_DEVICE=cuda``; the
Cartesia key is the conventional ``CARTESIA_API_KEY``) and, except secrets, can be overridden by
the matching CLI flag (``--device cuda``); see ``tts-server serve --help``. Secrets are env-only so
they never show in ``ps`` output.

The fields here are the server's own (binding, keys, limits on requests). Each engine's section
(``engines/<name>/settings.py``, listed by :mod:`engines.registry`) is a base class of
:class:`Settings`, so engines read their own fields and a new engine needs no edit here.
Nothing reads the environment at import time: ``Settings()`` does, when the CLI or a test makes one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engines.kokoro.settings import KOKORO_MODEL
from engines.orpheus.settings import ORPHEUS_MODEL
from engines.registry import settings_sections

CARTESIA_MODEL = "cartesia/sonic"
__all__ = ["CARTESIA_MODEL", "KOKORO_MODEL", "ORPHEUS_MODEL", "Settings"]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(*settings_sections(), BaseSettings):  # type: ignore[misc]
    model_config = SettingsConfigDict(env_prefix="TTS_", extra="ignore", validate_default=True, populate_by_name=True)

    # --- serving -------------------------------------------------------------------------------
    host: str = Field("0.0.0.0", description="Address to bind.")
    port: int = Field(8000, description="Port to bind.")
    models: Annotated[list[str], NoDecode] = Field(
        [KOKORO_MODEL], description="Comma-separated model names to load at startup."
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        [], description="Comma-separated bearer keys clients must send; empty means open access."
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field("info", description="Logging level.")
    torch_threads: int | None = Field(None, description="torch intra-op threads on CPU (default: torch's).")

    # --- requests ------------------------------------------------------------------------------
    max_input_chars: int = Field(4096, ge=1, description="Longest accepted `input`, in characters.")
    warmup: bool = Field(True, description="Synthesize a short phrase at startup before turning ready.")

    # --- compatibility -------------------------------------------------------------------------
    hosted_compat: bool = Field(
        False,
        description=(
            "Behave exactly like hosted Together for local models: ignore even an explicit sample_rate or "
            "response_encoding and always return 24 kHz pcm_s16le."
        ),
    )

    @field_validator("models", "api_keys", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)
