"""Kokoro's settings section (``settings.kokoro``; env ``TTS_KOKORO_<FIELD>``): weights, batching policy, G2P."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from engines.settings import LocalEngineSettings, split_csv

KOKORO_MODEL = "hexgrad/Kokoro-82M"


class KokoroSettings(LocalEngineSettings):
    source: str = Field(KOKORO_MODEL, description="HF repo id or local directory with Kokoro weights.")
    revision: str = Field("f3ff3571791e39611d31c381e3a41a3af07b4987", description="Pinned HF revision.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="The decoder's precision (the text front is always fp32, so lengths and timings do not move). "
        "auto = bfloat16 on a CPU with AMX (with the compiled decoder 1.8-1.9x eager fp32 on 2 cores; Whisper "
        "hears it as well as fp32), float32 on other CPUs (bf16 would be emulated) and on CUDA (not yet measured).",
    )
    batch_policy: Literal["auto", "batched", "front", "serial"] = Field(
        "auto",
        description="How a step runs its items: batched = one padded forward (text front and decoder); front = "
        "batched text/prosody front, decoder one item at a time, each item's audio sent when ready; serial = one "
        "item at a time. auto = batched on CUDA, front on CPU (where the decoder is compute-bound at batch 1).",
    )
    max_batch_tokens: int = Field(
        4096, ge=64, description="Budget of padded phoneme tokens (items x longest) per batched front."
    )
    max_batch_frames: int = Field(
        8192, ge=64, description="Budget of padded frames (items x longest) per batched decoder call."
    )
    device_pcm: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Resample and encode audio on the model's device before one host copy per batch; auto = on "
        "CUDA only (on a CPU the server's soxr path is faster).",
    )
    compile: Literal["auto", "on", "off"] = Field(
        "auto",
        description="torch.compile the vocoder's Snake resblocks, the decoder's memory-bound part (dynamic shapes: "
        "one graph per block type for every batch size and length), at load, before the model is ready. auto = on "
        "on a CPU (1.1-1.25x eager fp32 there, README), off on CUDA (not yet measured). The first start "
        "compiles (about two minutes on a 2-core CPU); later ones read Inductor's cache (TTS_COMPILE_CACHE_DIR). "
        "A compiler failure falls back to eager and shows in /stats as compile_fallback. true/false = on/off.",
    )
    max_phonemes: int = Field(
        32768,
        ge=512,
        description="Bound on one request's work, in phonemes (what the model is fed; about 12-15 a second of "
        "speech). Prose takes ~1.1 per input character, number-heavy text 2-4, text of nothing but large amounts "
        "~7.5: the default is 8 per character of the longest default input (4096), and a request past it is a 400.",
    )
    g2p_workers: int = Field(
        2, ge=1, description="Text-to-phoneme threads; first segments jump the queue so a request's start never waits."
    )

    segment_context: bool = Field(
        True,
        description="Predict each chunk's durations with the request's earlier text and the next chunk (when "
        "already phonemized) as context, so a request cut into chunks lasts as long as the same text spoken "
        "whole (alone, Kokoro speaks each chunk 2-4% slower). Off: each chunk alone, as KPipeline speaks it.",
    )

    # --- custom voices ---------------------------------------------------------------------------
    voices_dir: Annotated[list[Path], NoDecode] = Field(
        [],
        description="Comma-separated directories of extra voicepacks: each *.pt or *.safetensors holding a "
        "[510, 1, 256] float tensor becomes a voice named after its file (sidecar <name>.json: language, gender, "
        "description); files of another shape are skipped with a log line, names of existing voices refused.",
    )
    max_saved_voices: int = Field(
        256, ge=0, description="Most voices saved over the API (POST /v1/voices); more are refused with a 400."
    )

    @field_validator("compile", mode="before")
    @classmethod
    def _on_off(cls, value: object) -> object:
        """``true``/``false`` (env, JSON, older configs) mean on/off."""
        lowered = str(value).strip().lower()
        if isinstance(value, bool) or lowered in {"true", "false", "1", "0", "yes", "no"}:
            return "on" if lowered in {"true", "1", "yes"} else "off"
        return value

    @field_validator("voices_dir", mode="before")
    @classmethod
    def _voice_dirs(cls, value: object) -> object:
        return split_csv(value)
