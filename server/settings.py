"""The server's one settings object.

Every flat field is read from an environment variable ``TTS_<FIELD>`` (e.g. ``TTS_PORT=9000``) and,
except secrets, can be overridden by the matching CLI flag (``--port 9000``); see
``tts-server serve --help``. Secrets are env-only so they never show in ``ps`` output.

The flat fields are the server's own (binding, keys, limits on requests) and the defaults every
model inherits (``device``, ``max_batch_size``...: :class:`engines.settings.EngineDefaults`). Each
model has its own section, built from its engine's settings class: ``settings.kokoro``,
``settings.orpheus``, ``settings.cartesia`` (``TTS_KOKORO_DEVICE``, ``--orpheus-max-batch-size``);
server/settings_layout.py names them and says which value wins. An engine receives its section alone.
Nothing reads the environment at import time: ``Settings()`` does, when the CLI or a test makes one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engines import registry
from engines.cartesia.settings import CartesiaSettings
from engines.kokoro.settings import KokoroSettings
from engines.orpheus.settings import OrpheusSettings
from engines.settings import EngineDefaults, split_csv, split_mapping
from server import settings_layout

__all__ = ["Settings"]


# OpenAI's model names -> what serves them here (see server/openai/): the default model.
OPENAI_MODEL_ALIASES = dict.fromkeys(
    ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15"), registry.DEFAULT_MODEL
)


class Settings(EngineDefaults, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TTS_", extra="ignore", validate_default=True, populate_by_name=True)

    # --- serving -------------------------------------------------------------------------------
    host: str = Field("0.0.0.0", description="Address to bind.")
    port: int = Field(8000, description="Port to bind.")
    models: Annotated[list[str], NoDecode] = Field(
        [registry.DEFAULT_MODEL], description="Comma-separated model names to load at startup."
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        [], description="Comma-separated bearer keys clients must send; empty means open access."
    )
    keys_file: Path | None = Field(
        None,
        description="Tenants file (YAML or JSON): named keys with models, limits, priority (README: Tenants); "
        "re-read on SIGHUP and when it changes. TTS_API_KEYS stay valid as unnamed keys without limits.",
    )
    keys_file_poll_s: float = Field(
        5.0, ge=0, description="How often to check the tenants file for changes, in seconds (0: only on SIGHUP)."
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field("info", description="Logging level.")
    torch_threads: int | None = Field(None, description="torch intra-op threads on CPU (default: torch's).")

    # --- requests ------------------------------------------------------------------------------
    max_input_chars: int = Field(4096, ge=1, description="Longest accepted `input`, in characters.")
    warmup: bool = Field(True, description="Synthesize a short phrase at startup before turning ready.")
    data_dir: Path | None = Field(
        None,
        description="Where usage records and saved voices persist (default: $XDG_DATA_HOME/tts-server, else "
        "~/.local/share/tts-server).",
    )
    compile_cache_dir: Path | None = Field(
        None,
        description="Where torch.compile keeps its compiled kernels (Inductor's cache), so only the first start "
        "compiles (default: <data dir>/compile-cache; TORCHINDUCTOR_CACHE_DIR, when set, wins).",
    )
    pronunciation_dict: Path | None = Field(
        None,
        description="Server-wide pronunciation dictionary: a text file of '<source>/<replacement>' entries, one "
        "per line (# comments); applies to every request, whose own extra_params.pronunciation_dict wins.",
    )

    # --- operations (issue 11: deadlines, shutdown, restarts, HTTP limits) ---------------------------
    request_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Deadline per request: 504 before the response starts, a final SSE error event after.",
    )
    shutdown_grace_s: float = Field(
        20.0,
        ge=0,
        le=300,
        description="On SIGTERM: refuse new requests (503) and give in-flight ones this long before ending them.",
    )
    engine_max_restarts: int = Field(
        3, ge=0, description="Restarts of a model whose worker died or hung, over the process's life; then failed."
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body; more is a 413.")
    max_json_depth: int = Field(
        32, ge=4, le=512, description="Deepest nesting of a JSON body or realtime event; deeper is a 400."
    )
    max_header_bytes: int = Field(
        65_536, ge=4096, description="Largest request line plus headers; more is a 431 (HTTP/1.1 parser limit)."
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="A client must send its request line and headers within this long (else 408)."
    )
    body_timeout_s: float = Field(10.0, gt=0, description="A client must send its whole body within this long.")

    # --- compatibility -------------------------------------------------------------------------
    hosted_compat: bool = Field(
        False,
        description=(
            "Behave exactly like hosted Together for local models: ignore even an explicit sample_rate or "
            "response_encoding and always return 24 kHz pcm_s16le."
        ),
    )

    # --- realtime websocket (server/realtime/) ---------------------------------------------------
    realtime_max_partial_length: int = Field(
        250, ge=1, description="Default max_partial_length: unfinished text released after this many characters."
    )
    realtime_idle_timeout_s: float = Field(
        120.0, gt=0, description="Close a realtime websocket after this long with no client event and no audio."
    )
    realtime_max_session_s: float = Field(3600.0, gt=0, description="Longest a realtime websocket may stay open.")
    realtime_max_pending_items: int = Field(
        8, ge=1, description="Items one realtime websocket may have committed and not yet spoken; more are refused."
    )

    # --- OpenAI clients (server/openai/) ---------------------------------------------------------
    openai_model_aliases: Annotated[dict[str, str], NoDecode] = Field(
        OPENAI_MODEL_ALIASES,
        description="OpenAI model names -> served models (name=model,... or JSON), for OpenAI-style requests.",
    )
    openai_voices: Annotated[dict[str, str], NoDecode] = Field(
        {},
        description="Extra OpenAI voice names -> a model's voices (name=voice,... or JSON), over the model's own "
        "map (Kokoro's: alloy -> af_alloy...).",
    )

    # --- one section per model (server/settings_layout.py): TTS_<SECTION>_<FIELD>, --<section>-<field> ---
    kokoro: KokoroSettings = Field(default_factory=KokoroSettings, description="Kokoro's section.")
    orpheus: OrpheusSettings = Field(default_factory=OrpheusSettings, description="Orpheus's section.")
    cartesia: CartesiaSettings = Field(default_factory=CartesiaSettings, description="Cartesia's section.")

    @model_validator(mode="before")
    @classmethod
    def _build_sections(cls, data: object) -> object:
        """Each section from its own names, then the flat defaults (settings_layout's precedence)."""
        if not isinstance(data, dict):
            return data
        environ = settings_layout.upper_environ()
        built = dict(data)
        for section, section_cls in settings_layout.sections():
            values = settings_layout.section_values(section, section_cls, data, environ)
            given = data.get(section)
            if isinstance(given, BaseModel):  # a whole section object passed in (tests, embedding apps)
                given = given.model_dump(exclude_unset=True)
            built[section] = {**(given or {}), **values} if isinstance(given, dict) or given is None else given
        return built

    def section(self, name: str) -> BaseModel:
        """The settings section of model ``name`` (any alias), for its engine."""
        return getattr(self, registry.resolve(name).section)

    @field_validator("models", "api_keys", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return split_csv(value)

    @field_validator("openai_model_aliases", "openai_voices", mode="before")
    @classmethod
    def _mapping(cls, value: object) -> object:
        return split_mapping(value)
