"""The Kokoro-82M engine.

Text is split into segments (short first one for fast first audio), phonemized on a G2P thread
while earlier segments are already being synthesized, and fed to a :class:`BatchWorker` that owns
the model. Each worker step synthesizes the next phoneme chunk of every ready request, so
concurrent requests interleave instead of queueing behind each other.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from engines.audio import fade
from engines.base import Engine, PcmChunk, SynthesisRequest, Voice
from engines.kokoro import loader
from engines.kokoro.g2p import LANGUAGES, Phonemizer, lang_code_for
from engines.kokoro.voices import VoiceBank
from engines.text import segment_text
from engines.worker import BatchWorker, Job
from server.errors import ServiceUnavailable, as_api_error

logger = logging.getLogger(__name__)

SAMPLE_RATE = 24000
EDGE_FADE_SAMPLES = 48  # 2 ms raised-cosine ramps: segment joins start and end at zero, no clicks


@dataclass
class _RequestState:
    pack: torch.Tensor
    speed: float
    seed: int | None
    chunks: collections.deque[str] = field(default_factory=collections.deque)
    g2p_done: bool = False
    synthesized: int = 0


def smooth_edges(audio: np.ndarray, n: int = EDGE_FADE_SAMPLES) -> np.ndarray:
    half = min(n, audio.size // 2)
    return fade(fade(audio, half, rising=True), half, rising=False)


class KokoroEngine(Engine):
    sample_rate = SAMPLE_RATE
    languages = LANGUAGES

    def __init__(self, model_id: str, settings: Any) -> None:
        super().__init__(model_id, settings)
        self._model = None
        self._bank: VoiceBank | None = None
        self._phonemizer: Phonemizer | None = None
        self._g2p_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kokoro-g2p")
        self._worker: BatchWorker | None = None
        self._synth_seconds = 0.0
        self._audio_seconds = 0.0

    # -- lifecycle ----------------------------------------------------------------------------
    @classmethod
    def prefetch(cls, settings: Any) -> list[str]:
        return [f"weights in {loader.weights_dir(settings)}"]

    async def load(self) -> None:
        device = self.settings.resolved_device()
        directory = await asyncio.to_thread(loader.weights_dir, self.settings)
        self._model = await asyncio.to_thread(loader.load_kmodel, directory, device)
        self._bank = await asyncio.to_thread(VoiceBank, directory / "voices", device)
        if not self._bank.voices():
            raise ServiceUnavailable(f"No voices (*.pt) in {directory / 'voices'}.")
        self._phonemizer = Phonemizer(self.model_id)
        # English G2P (spaCy) takes a second to build: do it now rather than on the first request.
        await self._on_g2p_thread(self._phonemizer.pipeline, "a")
        self._worker = BatchWorker(
            "kokoro",
            self._step,
            max_batch_size=self.settings.max_batch_size,
            max_wait_ms=self.settings.max_wait_ms,
            max_queue_size=self.settings.max_queue_size,
            is_ready=lambda job: bool(job.state.chunks) or job.state.g2p_done,
        )
        self._worker.start()
        logger.info("Kokoro loaded on %s with %d voices", device, len(self._bank.voices()))

    async def warmup(self) -> None:
        voice = self.voices()[0].id
        request = SynthesisRequest(model=self.model_id, text="Hello.", voice=voice, seed=0)
        async for _ in self.synthesize(request):
            pass

    async def close(self) -> None:
        if self._worker is not None:
            await self._worker.stop()
        self._g2p_pool.shutdown(wait=False, cancel_futures=True)

    # -- requests -----------------------------------------------------------------------------
    def voices(self) -> list[Voice]:
        return self._bank.voices() if self._bank else []

    async def validate(self, request: SynthesisRequest) -> None:
        self._require_loaded()
        mix = self._bank.resolve(request.voice)
        # Builds the language's pipeline on first use; a missing G2P extra surfaces here as a 400.
        await self._on_g2p_thread(self._phonemizer.pipeline, self._lang_code(request, mix.primary))

    async def synthesize(self, request: SynthesisRequest) -> AsyncIterator[PcmChunk]:
        self._require_loaded()
        mix = self._bank.resolve(request.voice)
        lang_code = self._lang_code(request, mix.primary)
        segments = segment_text(
            request.text, first_chars=self.settings.first_segment_chars, max_chars=self.settings.segment_chars
        )
        state = _RequestState(pack=self._bank.pack(mix), speed=request.speed, seed=request.seed)
        job = self._worker.submit(state)
        feeder = asyncio.create_task(self._feed(job, segments, lang_code))
        try:
            async for samples in job.results():
                yield PcmChunk(samples, SAMPLE_RATE)
        finally:
            job.cancel()
            feeder.cancel()

    async def _feed(self, job: Job[_RequestState], segments: Sequence[str], lang_code: str) -> None:
        """Phonemize segment by segment, handing each to the worker as soon as it is ready."""
        state = job.state
        try:
            for segment in segments:
                if job.cancelled:
                    return
                chunks = await self._on_g2p_thread(self._phonemizer.phonemize, segment, lang_code)
                state.chunks.extend(chunks)
                self._worker.wake()
        except Exception as exc:
            job.fail(as_api_error(exc))
            job.cancel()
        finally:
            state.g2p_done = True
            self._worker.wake()

    # -- worker thread ------------------------------------------------------------------------
    @torch.inference_mode()
    def _step(self, batch: Sequence[Job[_RequestState]]) -> None:
        # KModel.forward_with_tokens handles one utterance at a time, so a step walks its batch;
        # a padded batched forward can replace this loop without touching the scheduling.
        for job in batch:
            try:
                self._advance(job)
            except Exception as exc:  # one bad request fails alone, not its whole batch
                logger.exception("kokoro: request failed")
                job.fail(as_api_error(exc))

    def _advance(self, job: Job[_RequestState]) -> None:
        state = job.state
        if state.chunks:
            phonemes = state.chunks.popleft()
            if state.seed is not None:
                # The vocoder's sine source draws random noise; seed per chunk for reproducibility.
                torch.manual_seed(state.seed + state.synthesized)
            started = time.perf_counter()
            audio = self._model(phonemes, state.pack[len(phonemes) - 1], state.speed)
            samples = smooth_edges(audio.float().cpu().numpy().reshape(-1))
            self._synth_seconds += time.perf_counter() - started
            self._audio_seconds += samples.size / SAMPLE_RATE
            state.synthesized += 1
            job.emit(samples)
        if state.g2p_done and not state.chunks:
            job.finish()

    # -- helpers ------------------------------------------------------------------------------
    async def _on_g2p_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._g2p_pool, fn, *args)

    def _lang_code(self, request: SynthesisRequest, primary_voice: str) -> str:
        return lang_code_for(request.language, self._bank.lang_codes[primary_voice])

    def _require_loaded(self) -> None:
        if self._worker is None:
            raise ServiceUnavailable("Kokoro is still loading; retry shortly.")

    def stats(self) -> dict[str, Any]:
        stats = self._worker.snapshot() if self._worker else {}
        stats["audio_seconds"] = round(self._audio_seconds, 3)
        stats["synthesis_seconds"] = round(self._synth_seconds, 3)
        return stats
