"""The server's one settings object.

Every field is read from an environment variable ``TTS_<FIELD>`` (e.g. ``TTS_DEVICE=cuda``; the
Cartesia key is the conventional ``CARTESIA_API_KEY``) and, except secrets, can be overridden by
the matching CLI flag (``--device cuda``); see ``tts-server serve --help``. Secrets are env-only so
they never show in ``ps`` output.
Nothing reads the environment at import time: ``Settings()`` does, when the CLI or a test makes one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

KOKORO_MODEL = "hexgrad/Kokoro-82M"
ORPHEUS_MODEL = "canopylabs/orpheus-3b-0.1-ft"
CARTESIA_MODEL = "cartesia/sonic"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
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

    # --- hardware ------------------------------------------------------------------------------
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype for generative models; auto = bf16 on CUDA, fp32 on CPU."
    )
    torch_threads: int | None = Field(None, description="torch intra-op threads on CPU (default: torch's).")

    # --- model sources -------------------------------------------------------------------------
    cache_dir: Path | None = Field(None, description="Hugging Face cache directory (default: HF's own).")
    offline: bool = Field(False, description="Never contact the Hugging Face Hub; use the cache or local dirs.")
    kokoro_source: str = Field(KOKORO_MODEL, description="HF repo id or local directory with Kokoro weights.")
    kokoro_revision: str = Field("f3ff3571791e39611d31c381e3a41a3af07b4987", description="Pinned HF revision.")
    orpheus_source: str = Field(ORPHEUS_MODEL, description="HF repo id or local directory with the Orpheus LM.")
    orpheus_revision: str = Field("4206a56e5a68cf6cf96900a8a78acd3370c02eb6", description="Pinned HF revision.")
    snac_source: str = Field("hubertsiuzdak/snac_24khz", description="HF repo id or local directory with SNAC.")
    snac_revision: str = Field("d73ad176a12188fcf4f360ba3bf2c2fbbe8f58ec", description="Pinned HF revision.")

    # --- cartesia ------------------------------------------------------------------------------
    # Everything the cartesia/sonic proxy (engines/cartesia/) reads. Only this section is its own.
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
    cartesia_max_connections: int = Field(100, ge=1, description="Connections kept open to Cartesia at most.")
    cartesia_http2: bool = Field(True, description="Use HTTP/2 to Cartesia when the h2 package is installed.")
    cartesia_voices_file: Path | None = Field(
        None, description="Extra JSON voice catalog (same layout as voices/cartesia.json); its names win."
    )
    cartesia_voices_ttl_s: float = Field(
        600.0, ge=0, description="How long Cartesia's GET /voices answer is cached for name lookups."
    )

    # --- limits and scheduling -----------------------------------------------------------------
    max_input_chars: int = Field(4096, ge=1, description="Longest accepted `input`, in characters.")
    max_queue_size: int = Field(64, ge=1, description="Requests queued or running per model before 429.")
    max_batch_size: int = Field(8, ge=1, description="Most requests one worker step serves together.")
    max_wait_ms: float = Field(5.0, ge=0, description="How long a worker waits to fill a batch.")
    first_segment_chars: int = Field(
        120, ge=20, description="Target size of the first text segment (smaller = faster first audio)."
    )
    segment_chars: int = Field(400, ge=50, description="Target size of later text segments.")
    warmup: bool = Field(True, description="Synthesize a short phrase at startup before turning ready.")

    # --- orpheus -------------------------------------------------------------------------------
    # Sampling defaults are canopyai/Orpheus-TTS's own (orpheus_tts/engine_class.py,
    # generate_tokens_sync): temperature 0.6, top_p 0.8, repetition_penalty 1.3, max_tokens 1200.
    orpheus_temperature: float = Field(0.6, gt=0.0, le=2.0, description="Orpheus sampling temperature.")
    orpheus_top_p: float = Field(0.8, gt=0.0, le=1.0, description="Orpheus nucleus sampling mass.")
    orpheus_repetition_penalty: float = Field(
        1.3, ge=1.1, le=2.0, description="Orpheus repetition penalty; the authors require >= 1.1 for stable speech."
    )
    orpheus_max_tokens: int = Field(
        1200, ge=7, description="Default most audio tokens per text segment (7 per 85 ms frame; 1200 ~ 14 s)."
    )
    orpheus_max_tokens_limit: int = Field(
        8000, ge=7, description="Highest per-request max_tokens (Orpheus was trained on 8192-token sequences)."
    )
    orpheus_segment_chars: int = Field(
        200, ge=20, description="Longest Orpheus text segment (caps segment_chars; ~200 chars fit 1200 tokens)."
    )
    orpheus_parallel_segments: int = Field(
        2, ge=1, description="Segments of one request generated at once when the batch has free rows."
    )
    orpheus_snac_context_frames: int = Field(
        3, ge=0, description="Already-emitted frames decoded again as left context of each SNAC window (3 = exact)."
    )
    orpheus_snac_lookahead_frames: int = Field(
        2,
        ge=1,
        description="Frames decoded after the emitted ones as right context (2: ~-67 dB error, 3 = exact; "
        "0 is audibly wrong, so at least 1).",
    )
    orpheus_snac_first_chunk_frames: int = Field(
        1, ge=1, description="Frames in a stream's first audio chunk (2048 samples each); small = early first audio."
    )
    orpheus_snac_chunk_frames: int = Field(
        4, ge=1, description="Frames per later audio chunk; larger amortises the context frames each window decodes."
    )
    orpheus_join_fade_ms: float = Field(
        5.0, ge=0.0, le=50.0, description="Raised-cosine fade at the joins between text segments, so no click."
    )

    # --- compatibility -------------------------------------------------------------------------
    hosted_compat: bool = Field(
        False,
        description=(
            "Behave like hosted Together for local models: ignore sample_rate and response_encoding "
            "and always return 24 kHz pcm_s16le."
        ),
    )

    @field_validator("models", "api_keys", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def resolved_dtype(self, device: str) -> str:
        if self.dtype != "auto":
            return self.dtype
        return "bfloat16" if device.startswith("cuda") else "float32"
