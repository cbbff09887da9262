"""Everything the cartesia/sonic proxy reads: ``settings.cartesia`` (env ``TTS_CARTESIA_<FIELD>``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

#: The model name clients send (and its family, cartesia/sonic-2, -3: engines/registry.py).
CARTESIA_MODEL = "cartesia/sonic"


class CartesiaSettings(BaseModel):
    model_config = ConfigDict(protected_namespaces=())  # a field named model_id
    # Cartesia's own SDKs read CARTESIA_API_KEY; the server reads it too.
    ENV_ALIASES: ClassVar[dict[str, tuple[str, ...]]] = {"api_key": ("CARTESIA_API_KEY",)}

    api_key: SecretStr | None = Field(None, description="Cartesia key (env only, also as CARTESIA_API_KEY).")
    base_url: str = Field("https://api.cartesia.ai", description="Cartesia API base URL.")
    # 2026-03-01 is the newest version Cartesia documents; it returns structured JSON error bodies.
    version: str = Field("2026-03-01", description="Cartesia-Version header sent upstream.")
    # Cartesia retired sonic-2 (and the original sonic) on 2026-06-01; sonic-3 is its current family.
    model_id: str = Field("sonic-3", description="Cartesia model_id that cartesia/sonic maps to.")
    connect_timeout_s: float = Field(5.0, gt=0, description="Seconds to open a connection to Cartesia.")
    read_timeout_s: float = Field(
        30.0, gt=0, description="Longest silence (seconds) between two reads from Cartesia before a 504."
    )
    max_buffered_bytes: int = Field(
        8 << 20,
        ge=1 << 16,
        description="Audio (as Cartesia's base64) a realtime context may hold that its client has not taken yet; past "
        "it that context is cancelled upstream and its item fails. The default is ~3 minutes of 24 kHz 16-bit audio.",
    )
    max_message_bytes: int = Field(
        4 << 20, ge=1 << 16, description="Largest websocket message read from Cartesia; a larger one drops the socket."
    )
    max_connections: int = Field(100, ge=1, description="Connections kept open to Cartesia at most.")
    http2: bool = Field(True, description="Use HTTP/2 to Cartesia when the h2 package is installed.")
    voices_file: Path | None = Field(
        None, description="Extra JSON voice catalog (same layout as voices/cartesia.json); its names win."
    )
    voices_ttl_s: float = Field(
        600.0, ge=0, description="How long Cartesia's GET /voices answer is cached for name lookups."
    )
    realtime_transport: Literal["websocket", "http"] = Field(
        "websocket",
        description="Text arriving in pieces (the realtime websocket): websocket = continuations on one Cartesia "
        "context (prosody flows across pieces, audio starts with the first sentence); http = the text is held until "
        "the commit, then sent as one POST (no websocket to keep open, audio starts later).",
    )
