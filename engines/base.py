"""The contract every model implements.

An engine turns a :class:`SynthesisRequest` into an async stream of audio chunks. Local models
yield :class:`PcmChunk` (float32 mono at the model's native rate) and let the server resample and
encode; a proxy whose upstream already speaks the requested wire format yields
:class:`EncodedChunk` so that bytes pass through untouched. The server never asks which concrete
engine it holds: it looks only at the chunk it got.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from server.settings import Settings

ResponseFormat = Literal["mp3", "wav", "raw"]
ResponseEncoding = Literal["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"]


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    language: str | None = None  # e.g. "en-US"
    gender: str | None = None  # "female" / "male"
    description: str | None = None


@dataclass(frozen=True)
class OutputSpec:
    """What the client asked to receive. ``sample_rate=None`` means the model's native rate."""

    format: ResponseFormat = "wav"
    encoding: ResponseEncoding = "pcm_f32le"
    sample_rate: int | None = None
    bit_rate: int = 128000
    stream: bool = False


@dataclass
class SynthesisRequest:
    model: str
    text: str
    voice: str
    language: str = "en"
    output: OutputSpec = field(default_factory=OutputSpec)
    speed: float = 1.0
    seed: int | None = None
    # Per-request sampling overrides for generative models (temperature, top_p, ...).
    sampling: dict[str, Any] = field(default_factory=dict)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class PcmChunk:
    """Mono float32 samples in [-1, 1]."""

    samples: np.ndarray
    sample_rate: int


@dataclass
class EncodedChunk:
    """Bytes already in the request's exact output format, encoding and sample rate."""

    data: bytes


AudioChunk = PcmChunk | EncodedChunk


class Engine(abc.ABC):
    """One served model. Created by :mod:`engines.registry` from the request's model name."""

    #: The model's own output rate, used when the client gives no ``sample_rate``.
    sample_rate: int = 24000
    #: Together language codes this engine can speak.
    languages: frozenset[str] = frozenset({"en"})
    #: Hosted Together ignores sample_rate/response_encoding for this model (always 24 kHz s16le).
    #: With ``Settings.hosted_compat`` the server mimics that; see server/services/speech.py.
    hosted_ignores_output_options: bool = True

    def __init__(self, model_id: str, settings: Settings) -> None:
        self.model_id = model_id
        self.settings = settings

    @classmethod
    def prefetch(cls, settings: Settings) -> list[str]:
        """Download this model's weights into the local cache (``tts-server download``).

        Returns human-readable descriptions of what is now on disk. Runs without an event loop.
        """
        return []

    @abc.abstractmethod
    async def load(self) -> None:
        """Load weights and start workers. Must not block the event loop."""

    async def warmup(self) -> None:
        """Run one small synthesis so the first real request does not pay for lazy init."""

    @abc.abstractmethod
    def voices(self) -> list[Voice]:
        """The voices a request may name (for ``/v1/voices``)."""

    @abc.abstractmethod
    async def validate(self, request: SynthesisRequest) -> None:
        """Raise an :class:`server.errors.APIError` (4xx) before any audio is produced."""

    @abc.abstractmethod
    def synthesize(self, request: SynthesisRequest) -> AsyncIterator[AudioChunk]:
        """Stream audio for ``request``. Closing the iterator cancels the remaining work."""

    async def close(self) -> None:
        """Stop workers and free the model."""

    @property
    def available(self) -> bool:
        """False when the engine is registered but cannot serve (e.g. no upstream key)."""
        return True

    def stats(self) -> dict[str, Any]:
        """Counters for ``/stats``: queue depth, batch sizes, ``audio_seconds``, ``synthesis_seconds``."""
        return {}
