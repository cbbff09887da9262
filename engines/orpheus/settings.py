"""Orpheus's settings section (``settings.orpheus``; env ``TTS_ORPHEUS_<FIELD>``): weights, sampling defaults,
segmenting, streaming SNAC windows, where the LM and the codec run."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from engines.settings import LocalEngineSettings, split_mapping

ORPHEUS_MODEL = "canopylabs/orpheus-3b-0.1-ft"


class OrpheusSettings(LocalEngineSettings):
    # Environment names kept from before the sections (TTS_SNAC_SOURCE was never TTS_ORPHEUS_...).
    ENV_ALIASES: ClassVar[dict[str, tuple[str, ...]]] = {
        "snac_source": ("TTS_SNAC_SOURCE",),
        "snac_revision": ("TTS_SNAC_REVISION",),
    }

    source: str = Field(ORPHEUS_MODEL, description="HF repo id or local directory with the Orpheus LM.")
    revision: str = Field("4206a56e5a68cf6cf96900a8a78acd3370c02eb6", description="Pinned HF revision.")
    snac_source: str = Field("hubertsiuzdak/snac_24khz", description="HF repo id or local directory with SNAC.")
    snac_revision: str = Field("d73ad176a12188fcf4f360ba3bf2c2fbbe8f58ec", description="Pinned HF revision.")

    # Sampling defaults are canopyai/Orpheus-TTS's own (orpheus_tts/engine_class.py,
    # generate_tokens_sync): temperature 0.6, top_p 0.8, repetition_penalty 1.3, max_tokens 1200.
    temperature: float = Field(0.6, gt=0.0, le=2.0, description="Orpheus sampling temperature.")
    top_p: float = Field(0.8, gt=0.0, le=1.0, description="Orpheus nucleus sampling mass.")
    repetition_penalty: float = Field(
        1.3, ge=1.1, le=2.0, description="Orpheus repetition penalty; the authors require >= 1.1 for stable speech."
    )
    max_tokens: int = Field(
        1200, ge=7, description="Default most audio tokens per text segment (7 per 85 ms frame; 1200 ~ 14 s)."
    )
    max_tokens_limit: int = Field(
        8000, ge=7, description="Highest per-request max_tokens (Orpheus was trained on 8192-token sequences)."
    )
    # Orpheus's own default, not the flat 400: ~200 characters fit the 1200 tokens of max_tokens.
    segment_chars: int = Field(
        200, ge=20, description="Longest text segment (~200 characters fit the default max_tokens of 1200)."
    )
    parallel_segments: int = Field(
        2, ge=1, description="Segments of one request generated at once when the batch has free rows."
    )
    snac_context_frames: int = Field(
        3, ge=0, description="Already-emitted frames decoded again as left context of each SNAC window (3 = exact)."
    )
    snac_lookahead_frames: int = Field(
        2,
        ge=1,
        description="Frames decoded after the emitted ones as right context (2: ~-67 dB error, 3 = exact; "
        "0 is audibly wrong, so at least 1).",
    )
    snac_first_chunk_frames: int = Field(
        1, ge=1, description="Frames in a stream's first audio chunk (2048 samples each); small = early first audio."
    )
    snac_chunk_frames: int = Field(
        4, ge=1, description="Frames per later audio chunk; larger amortises the context frames each window decodes."
    )
    join_fade_ms: float = Field(
        5.0, ge=0.0, le=50.0, description="Raised-cosine fade at the joins between text segments, so no click."
    )

    # --- backends and GPU scale (issue 9) ------------------------------------------------------
    backend: Literal["auto", "transformers", "vllm"] = Field(
        "auto", description="LM engine: vllm, transformers, or auto (vLLM when it is installed and CUDA is present)."
    )
    max_model_len: int | None = Field(
        None,
        ge=64,
        description="Longest sequence (prompt + audio tokens): the KV cache per row, and vLLM's limit. Default: "
        "the model's own limit (max_position_embeddings), at most 8192; more than the model allows fails its load.",
    )
    cuda_graphs: bool = Field(
        False, description="transformers backend: replay decode steps as CUDA graphs per bucket of batch size."
    )
    codec_device: str | None = Field(
        None, description="Where SNAC decodes: cpu | cuda | cuda:N; default the LM's device."
    )
    codec_batching: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Decode SNAC windows of several streams in one call: auto = up to codec_max_batch on CUDA, "
        "up to 2 on CPU (measured: benchmarks/results/snac-cpu/).",
    )
    codec_compile: bool = Field(
        False,
        description="torch.compile SNAC's decoder (dynamic shapes: one graph for every window length and batch "
        "size), at load; a compiler failure falls back to eager and shows in /stats as codec_compile_fallback.",
    )
    codec_max_batch: int = Field(32, ge=1, description="Most SNAC windows one codec batch takes.")
    codec_wait_ms: float = Field(
        2.0, ge=0.0, description="How long the codec stage waits for more windows before decoding a batch."
    )
    gpu_memory_utilization: float = Field(
        0.85, gt=0.0, le=1.0, description="vLLM: fraction of GPU memory for weights and KV cache."
    )
    max_num_seqs: int = Field(256, ge=1, description="vLLM: most sequences in one batch.")
    quantization: str | None = Field(None, description="vLLM: weight quantization, e.g. fp8 (Hopper).")
    enforce_eager: bool = Field(False, description="vLLM: no CUDA graphs (faster start, slower decode).")
    tensor_parallel_size: int = Field(1, ge=1, description="vLLM: GPUs the LM is split across.")

    # --- custom voices ---------------------------------------------------------------------------
    adapters: Annotated[dict[str, str], NoDecode] = Field(
        {},
        description="Voices served by LoRA adapters (PEFT directories), vLLM backend only: name=dir[:voice],... or "
        "a JSON object {name: 'dir[:voice]'}. ':voice' is the speaker name the adapter was trained on, which the "
        "prompt then says (default: the voice's own name).",
    )
    max_loras: int = Field(4, ge=1, description="vLLM: most different adapters in one batch.")
    max_lora_rank: int = Field(
        64, ge=1, le=512, description="vLLM: the largest adapter rank served (an adapter of higher rank fails load)."
    )

    @field_validator("adapters", mode="before")
    @classmethod
    def _adapters(cls, value: object) -> object:
        return split_mapping(value, "name=directory[:voice]")
