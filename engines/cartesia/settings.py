"""Everything the cartesia/sonic proxy reads (composed into the server's settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr


class CartesiaSettings(BaseModel):
    cartesia_api_key: SecretStr | None = Field(
        None, validation_alias="CARTESIA_API_KEY", description="Cartesia key (env CARTESIA_API_KEY)."
    )
    cartesia_base_url: str = Field("https://api.cartesia.ai", description="Cartesia API base URL.")
    # 2026-03-01 is the newest version Cartesia documents; it returns structured JSON error bodies.
    cartesia_version: str = Field("2026-03-01", description="Cartesia-Version header sent upstream.")
    # Cartesia retired sonic-2 (and the original sonic) on 2026-06-01; sonic-3 is its current family.
    cartesia_model_id: str = Field("sonic-3", description="Cartesia model_id that cartesia/sonic maps to.")
    cartesia_connect_timeout_s: float = Field(5.0, gt=0, description="Seconds to open a connection to Cartesia.")
    cartesia_read_timeout_s: float = Field(
        30.0, gt=0, description="Longest silence (seconds) between two reads from Cartesia before a 504."
    )
    cartesia_max_buffered_bytes: int = Field(
        8 << 20,
        ge=1 << 16,
        description="Audio (as Cartesia's base64) a realtime context may hold that its client has not taken yet; past "
        "it that context is cancelled upstream and its item fails. The default is ~3 minutes of 24 kHz 16-bit audio.",
    )
    cartesia_max_message_bytes: int = Field(
        4 << 20, ge=1 << 16, description="Largest websocket message read from Cartesia; a larger one drops the socket."
    )
    cartesia_max_connections: int = Field(100, ge=1, description="Connections kept open to Cartesia at most.")
    cartesia_http2: bool = Field(True, description="Use HTTP/2 to Cartesia when the h2 package is installed.")
    cartesia_voices_file: Path | None = Field(
        None, description="Extra JSON voice catalog (same layout as voices/cartesia.json); its names win."
    )
    cartesia_voices_ttl_s: float = Field(
        600.0, ge=0, description="How long Cartesia's GET /voices answer is cached for name lookups."
    )
