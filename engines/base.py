"""The contract every model implements: an engine opens sessions; a session takes text and yields events.

A session is opened from validated parameters (voice, language, output, sampling, seed), planned
and checked once, so a bad request fails before any audio exists. Text then arrives with
:meth:`EngineSession.feed`, possibly in many pieces (a websocket, an LLM streaming its reply);
:meth:`~EngineSession.commit` ends the input and :meth:`~EngineSession.clear` drops text not yet
released to the model. :meth:`~EngineSession.events` yields what the session produces, in order:
audio, word timings where the engine has them, and :class:`SessionEnd`. Closing a session cancels
its remaining work within one model step. ``POST /v1/audio/speech`` is open + feed(input) + commit.

Audio comes in one of three shapes. Local models yield :class:`PcmChunk` (float32 at the model's
rate; the server resamples and encodes) or, when they convert on their own device,
:class:`EncodedPcm` (already at the requested rate and encoding). A proxy whose upstream speaks
the requested wire format yields :class:`EncodedChunk`, whose bytes pass through untouched.
"""

from __future__ import annotations

import abc
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from engines.errors import Unsupported, VoiceNotFound

ResponseFormat = Literal["mp3", "wav", "raw"]
ResponseEncoding = Literal["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"]
#: How text is cut before synthesis (Together's ``segment``): at sentence ends (default), as soon as a
#: piece of text ends at a word boundary (lowest latency), or not at all (one utterance, split only
#: where the model's own input limit forces it).
SegmentMode = Literal["sentence", "immediate", "never"]


def base_language(language: str) -> str:
    """The language of a Together language code or lowercase locale: ``pt-br`` -> ``pt``."""
    return language.split("-", 1)[0]


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    language: str | None = None  # e.g. "en-US"
    gender: str | None = None  # "female" / "male"
    description: str | None = None
    #: builtin (the model's own), directory (an operator's voicepack files), saved (over the API), adapter.
    kind: str = "builtin"
    source: str | None = None  # a saved mix: the voice spec it was blended from


@dataclass(frozen=True)
class NewVoice:
    """A voice to save (``POST /v1/voices``): blended from ``mix``, or read from an uploaded file's ``data``."""

    name: str
    mix: str | None = None  # a voice or mix of this model's voices, e.g. "af_bella(2)+af_heart(1)"
    data: bytes | None = None  # a voice file's bytes (Kokoro: a voicepack)
    filename: str | None = None  # the upload's name, for messages
    language: str | None = None  # overrides what the mix's first voice (or the name's prefix) implies
    gender: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class OutputSpec:
    """What the client asked to receive. ``sample_rate=None`` means the model's native rate."""

    format: ResponseFormat = "wav"
    encoding: ResponseEncoding = "pcm_s16le"
    sample_rate: int | None = None
    bit_rate: int = 128000
    stream: bool = False

    @property
    def pcm_encoding(self) -> ResponseEncoding:
        """The PCM the container is built from: the request's encoding for raw, 16-bit for wav and mp3.

        Together's spec applies ``response_encoding`` to raw only; every wav this server sends (built
        here or by Cartesia) is 16-bit PCM.
        """
        return self.encoding if self.format == "raw" else "pcm_s16le"


@dataclass(kw_only=True)
class SessionParams:
    model: str
    voice: str
    language: str = "en"
    output: OutputSpec = field(default_factory=OutputSpec)
    speed: float = 1.0
    seed: int | None = None
    # Per-request sampling overrides for generative models (temperature, top_p, ...).
    sampling: dict[str, Any] = field(default_factory=dict)
    word_timestamps: bool = False
    # Text that arrives in pieces while the listener waits (the realtime websocket): release every
    # sentence the moment it ends, and unfinished text once it reaches this many characters
    # (Together's ``max_partial_length``). None: the engine's segmentation for whole inputs, which
    # gathers short sentences into longer segments.
    max_partial_chars: int | None = None
    segment: SegmentMode = "sentence"
    # Together's ``extra_params.pronunciation_dict``, parsed: (source, replacement) pairs, the
    # request's own entries merged over the server-wide dictionary (engines/pronunciation.py).
    pronunciations: tuple[tuple[str, str], ...] = ()
    # Scheduling class: lower is admitted first (vLLM's convention). The server maps its tenants'
    # interactive/standard/batch to -1/0/1; engines only compare the numbers.
    priority: int = 0
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(kw_only=True)
class SynthesisRequest(SessionParams):
    """Parameters plus the whole input: what one HTTP request asks for."""

    text: str


# -- events -------------------------------------------------------------------------------------
@dataclass
class PcmChunk:
    """Mono float32 samples in [-1, 1]; ``offset`` is the first sample's index within the utterance."""

    samples: np.ndarray
    sample_rate: int
    offset: int = 0


@dataclass
class EncodedPcm:
    """Raw PCM already at the requested rate and in ``encoding`` (converted on the model's device)."""

    data: bytes
    sample_rate: int
    encoding: ResponseEncoding
    offset: int = 0


@dataclass
class EncodedChunk:
    """Bytes already in the request's exact output format, encoding and sample rate."""

    data: bytes


@dataclass(frozen=True)
class WordTiming:
    word: str
    start: float  # seconds from the start of the utterance
    end: float


@dataclass
class WordTimings:
    words: list[WordTiming]


@dataclass
class SessionEnd:
    """The utterance is complete: every committed character has been spoken."""


AudioChunk = PcmChunk | EncodedPcm | EncodedChunk
SessionEvent = PcmChunk | EncodedPcm | EncodedChunk | WordTimings | SessionEnd

BYTES_PER_SAMPLE = {"pcm_f32le": 4, "pcm_s16le": 2, "pcm_mulaw": 1, "pcm_alaw": 1}


def chunk_seconds(event: object) -> float:
    """Seconds of audio in a PCM event (0 for anything else: a pre-encoded chunk has no known length)."""
    if isinstance(event, PcmChunk):
        return event.samples.shape[-1] / event.sample_rate
    if isinstance(event, EncodedPcm):
        return len(event.data) / BYTES_PER_SAMPLE[event.encoding] / event.sample_rate
    return 0.0


class EngineSession(abc.ABC):
    """One utterance in progress; see the module docstring. Use it as an async context manager."""

    def __init__(self, params: SessionParams) -> None:
        self.params = params

    @abc.abstractmethod
    async def feed(self, text: str) -> None:
        """Add text; whatever it settles (a sentence end, enough characters) starts synthesis."""

    @abc.abstractmethod
    async def commit(self) -> None:
        """End of input: everything fed so far is spoken, then the session ends."""

    @abc.abstractmethod
    async def clear(self) -> None:
        """Drop text fed but not yet released to the model (audio already in flight still arrives)."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[SessionEvent]:
        """Audio, word timings and finally :class:`SessionEnd`. Iterate it once."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Cancel whatever is left (within one model step). Idempotent."""

    async def __aenter__(self) -> EngineSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Engine(abc.ABC):
    """One served model. Created by :mod:`engines.registry` from the request's model name."""

    #: The model's own output rate, used when the client gives no ``sample_rate``.
    sample_rate: int = 24000
    #: Together language codes this engine can speak (a locale such as ``pt-br`` is spoken by its
    #: language's engine; see :func:`base_language`).
    languages: frozenset[str] = frozenset({"en"})
    #: What a request without ``response_encoding`` gets. Hosted Together answers Kokoro and Orpheus
    #: with pcm_s16le "regardless"; the spec's default (pcm_f32le) holds for the others.
    default_encoding: ResponseEncoding = "pcm_s16le"
    #: Hosted Together ignores sample_rate/response_encoding for this model (always 24 kHz s16le).
    #: With ``hosted_compat`` the server mimics that; see server/services/speech.py.
    hosted_ignores_output_options: bool = True
    #: Whether the model itself honours ``SessionParams.speed``. Where it does not, the OpenAI route
    #: time-stretches the audio instead (the Together route keeps ignoring ``speed`` there).
    native_speed: bool = True
    #: OpenAI voice names -> this model's voices, for the OpenAI-style route (server/openai/); the
    #: operator's ``openai_voices`` entries go over it. Empty: OpenAI's names are not mapped.
    openai_voices: Mapping[str, str] = MappingProxyType({})

    def __init__(self, model_id: str, settings: BaseModel) -> None:
        self.model_id = model_id
        self.settings = settings  # this model's own section (settings.<section>, server/settings_layout.py)
        #: Where voices saved over the API persist, one directory per model. The server sets it before
        #: :meth:`load` (the server owns paths); the engine creates it only when it first saves a voice.
        self.voice_store: Path | None = None

    def instruction_prefix(self, instructions: str | None) -> str:
        """Text put before the input to follow OpenAI's ``instructions`` (Orpheus: emotion tags).

        Models with no way to follow them return "" and ignore them, as OpenAI's ``tts-1`` does.
        """
        return ""

    @classmethod
    def prefetch(cls, settings: BaseModel) -> list[str]:
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
    async def open_session(self, params: SessionParams) -> EngineSession:
        """Check and plan ``params``; raise an :class:`engines.errors.TTSError` for a bad request."""

    # -- saved voices (POST/DELETE /v1/voices) -------------------------------------------------------
    async def add_voice(self, voice: NewVoice) -> Voice:
        """Store a new voice under ``voice.name`` (in :attr:`voice_store`) and serve it from now on."""
        raise Unsupported(f"Model '{self.model_id}' cannot save voices (hexgrad/Kokoro-82M can).", param="model")

    async def remove_voice(self, name: str) -> None:
        """Forget a saved voice and delete its files; the model's own voices cannot be removed."""
        raise Unsupported(f"Model '{self.model_id}' has no saved voices to delete.", param="model")

    def describe_voice(self, name: str) -> Voice:
        """One voice of this model by name, ignoring case; :class:`VoiceNotFound` if there is none."""
        for voice in self.voices():
            if voice.id.lower() == name.strip().lower():
                return voice
        raise VoiceNotFound(f"Model '{self.model_id}' has no voice '{name}'.")

    async def validate(self, params: SessionParams) -> None:
        """Check ``params`` without synthesizing anything (a session opened and closed at once)."""
        session = await self.open_session(params)
        await session.close()

    async def synthesize(self, request: SynthesisRequest) -> AsyncIterator[AudioChunk]:
        """Open a session, speak ``request.text`` whole, yield the audio. Closing the iterator cancels."""
        session = await self.open_session(request)
        async with contextlib.aclosing(session.events()) as events, session:
            await session.feed(request.text)
            await session.commit()
            async for event in events:
                if isinstance(event, PcmChunk | EncodedPcm | EncodedChunk):
                    yield event

    async def close(self) -> None:
        """Stop workers and free the model."""

    def health(self) -> str | None:
        """None while the engine makes progress; else why it cannot serve (a dead or hung worker).

        The server polls this; a reason marks the model failed, and the server restarts it (close,
        then load). Engines with worker threads report their workers' state here.
        """
        return None

    @property
    def available(self) -> bool:
        """False when the engine is registered but cannot serve (e.g. no upstream key)."""
        return True

    def stats(self) -> dict[str, Any]:
        """Counters for ``/stats``: queue depth, batch sizes, ``audio_seconds``, ``synthesis_seconds``."""
        return {}
