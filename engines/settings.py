"""Settings every local engine reads: hardware, where weights come from, scheduling, segmentation.

Each engine owns a settings section next to its code (``engines/<name>/settings.py``) that extends
:class:`LocalEngineSettings`; the server gives each model its own section (``settings.kokoro``,
``settings.orpheus``), so two models can sit on different devices with different limits. The
fields of :class:`EngineDefaults` are also server-wide defaults (``TTS_DEVICE``...) that every
section inherits unless it sets its own (``TTS_KOKORO_DEVICE``); server/settings_layout.py has the
rules. Plain pydantic models: nothing here reads the environment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class EngineDefaults(BaseModel):
    """The fields every local model has; the server also keeps them as flat, inherited defaults."""

    # --- hardware ------------------------------------------------------------------------------
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N (auto: cuda when present, else cpu).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype for generative models; auto = bf16 on CUDA, fp32 on CPU."
    )

    # --- model sources -------------------------------------------------------------------------
    cache_dir: Path | None = Field(None, description="Hugging Face cache directory (default: HF's own).")
    offline: bool = Field(False, description="Never contact the Hugging Face Hub; use the cache or local dirs.")

    # --- scheduling ----------------------------------------------------------------------------
    max_queue_size: int = Field(64, ge=1, description="Requests queued or running per model before 429.")
    max_batch_size: int | None = Field(
        None,
        ge=1,
        description="Most requests one worker step serves together; default 8 on CPU (compute-bound already at "
        "small batches) and 32 on CUDA (where one padded forward for 32 streams is the throughput target).",
    )
    max_wait_ms: float = Field(5.0, ge=0, description="How long a worker waits to fill a batch.")
    watchdog_s: float = Field(
        120.0,
        gt=0,
        description="A model step that shows no progress for this long marks the model failed (then restarted).",
    )
    max_buffered_audio_s: float = Field(
        20.0,
        gt=0,
        description="Audio a request may have generated ahead of its reader; past it, its generation pauses.",
    )

    # --- text segmentation (engines/text.py) ---------------------------------------------------
    first_segment_chars: int = Field(
        120, ge=20, description="Longest first text segment (smaller = faster first audio)."
    )
    segment_chars: int = Field(400, ge=50, description="Longest later text segment.")
    segment_min_chars: int = Field(
        100, ge=1, description="Later segments gather sentences until they have at least this many characters."
    )


class LocalEngineSettings(EngineDefaults):
    """A local model's section: :class:`EngineDefaults` plus how its values resolve on a device."""

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def resolved_max_batch_size(self, device: str) -> int:
        if self.max_batch_size is not None:
            return self.max_batch_size
        return 32 if device.startswith("cuda") else 8

    def resolved_dtype(self, device: str) -> str:
        if self.dtype != "auto":
            return self.dtype
        return "bfloat16" if device.startswith("cuda") else "float32"


def split_csv(value: object) -> object:
    """``a,b,c`` from an env var or flag -> a list (other values pass through to the field's type)."""
    if isinstance(value, str | Path):
        return [item.strip() for item in str(value).split(",") if item.strip()]
    return value


def split_mapping(value: object, pair: str = "name=target") -> object:
    """``name=target,name=target`` (or a JSON object) from an env var or flag -> a dict."""
    if not isinstance(value, str):
        return value
    if value.strip().startswith("{"):
        return json.loads(value)
    pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
    if any(len(item) != 2 for item in pairs):
        raise ValueError(f"expected {pair} pairs separated by commas, or a JSON object")
    return {name.strip(): target.strip() for name, target in pairs}
