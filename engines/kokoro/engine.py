"""The Kokoro-82M engine.

A session segments its text as it arrives; each segment is phonemized on the G2P threads (a
request's first segment ahead of the rest) and queued as phoneme chunks on the request's job. The
:class:`BatchWorker` that owns the model hands every ready request to :class:`KokoroBatcher`,
which runs the next chunk of all of them in padded batches (see batcher.py) and converts the audio
on the model's device.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import torch

from engines.base import Engine, NewVoice, SessionParams, SynthesisRequest, Voice
from engines.errors import InputTooLong, ServiceUnavailable, Unsupported, as_tts_error
from engines.job import Job
from engines.kokoro import custom_voices, loader
from engines.kokoro.batched import BatchedKokoro
from engines.kokoro.batcher import EDGE_FADE_SAMPLES, KokoroBatcher
from engines.kokoro.context import with_context
from engines.kokoro.g2p import LANGUAGES, PhonemeChunk, lang_code_for
from engines.kokoro.g2p_pool import FIRST, LATER, G2PPool
from engines.kokoro.openai_voices import OPENAI_VOICES
from engines.kokoro.precision import decoder_dtype
from engines.kokoro.requests import KokoroRequest, new_item
from engines.kokoro.settings import KokoroSettings
from engines.kokoro.timestamps import SAMPLE_RATE, token_spans
from engines.kokoro.voices import VoiceBank
from engines.pronunciation import Pronouncer, WordRestorer
from engines.session import WorkerSession
from engines.text import TextSegmenter
from engines.worker import BatchWorker

logger = logging.getLogger(__name__)

__all__ = ["EDGE_FADE_SAMPLES", "KokoroEngine", "SAMPLE_RATE"]

#: ``segment: never``: the longest text phonemized at once. Kokoro's own input limit (510 phonemes)
#: is met inside G2P, which splits at punctuation; this bounds one G2P call.
NEVER_SEGMENT_CHARS = 4096

Span = tuple[str, int, int]  # a word and its input ids (engines/kokoro/timestamps.py)


class KokoroEngine(Engine):
    sample_rate = SAMPLE_RATE
    languages = LANGUAGES

    settings: KokoroSettings
    openai_voices = OPENAI_VOICES

    def __init__(self, model_id: str, settings: KokoroSettings) -> None:
        super().__init__(model_id, settings)
        self._model = None
        self._device: torch.device | None = None
        self._bank: VoiceBank | None = None
        self._saved: custom_voices.SavedVoices | None = None
        self._g2p: G2PPool | None = None
        self._worker: BatchWorker | None = None
        self.batcher: KokoroBatcher | None = None
        self._languages_ready: set[str] = set()  # G2P pipelines built on every thread (checked once)

    # -- lifecycle ----------------------------------------------------------------------------
    @classmethod
    def prefetch(cls, settings: KokoroSettings) -> list[str]:
        return [f"weights in {loader.weights_dir(settings)}"]

    async def load(self) -> None:
        device = self.settings.resolved_device()
        directory = await asyncio.to_thread(loader.weights_dir, self.settings)
        self._model = await asyncio.to_thread(loader.load_kmodel, directory, device)
        self._device = torch.device(device)
        self._bank = await asyncio.to_thread(
            custom_voices.build_bank, directory / "voices", device, self.settings.voices_dir, self.voice_store
        )
        if not self._bank.voices():
            raise ServiceUnavailable(f"No voices (*.pt) in {directory / 'voices'}.")
        self._saved = custom_voices.SavedVoices(self._bank, self.voice_store, self.settings.max_saved_voices)
        self._g2p = G2PPool(self.model_id, self.settings.g2p_workers)
        # English G2P (spaCy) takes a second to build: do it now, on every thread, not on a request.
        await self._g2p.on_every_thread(lambda phonemizer: phonemizer.pipeline("a"))
        self._languages_ready.add("a")
        policy = self.settings.batch_policy
        if policy == "auto":
            policy = "batched" if self._device.type == "cuda" else "front"
        compiled = self.settings.compile == "on" or (self.settings.compile == "auto" and self._device.type == "cpu")
        dtype = decoder_dtype(self.settings.dtype, self._device)
        forward = BatchedKokoro(self._model, compile=compiled, decoder_dtype=dtype)
        # Compiling takes minutes on a CPU: now, before the worker (and its watchdog) runs a step.
        await asyncio.to_thread(forward.compile_now)
        self.batcher = KokoroBatcher(
            forward,
            self._device,
            policy=policy,
            max_batch_tokens=self.settings.max_batch_tokens,
            max_batch_frames=self.settings.max_batch_frames,
            device_pcm=self.settings.device_pcm == "on"
            or (self.settings.device_pcm == "auto" and self._device.type == "cuda"),
        )
        self._worker = BatchWorker(
            "kokoro",
            self.batcher.step,
            max_batch_size=self.settings.resolved_max_batch_size(device),
            max_wait_ms=self.settings.max_wait_ms,
            max_queue_size=self.settings.max_queue_size,
            # A request whose reader lags (see BatchWorker) sits out until it catches up.
            is_ready=lambda job: job.state.ready() and not job.backlogged,
            watchdog_s=self.settings.watchdog_s,
            max_buffered_s=self.settings.max_buffered_audio_s,
            device=self._device,
        )
        self._worker.start()
        logger.info("Kokoro loaded on %s with %d voices, %s batching", device, len(self._bank.voices()), policy)

    async def warmup(self) -> None:
        request = SynthesisRequest(model=self.model_id, text="Hello.", voice=self.voices()[0].id, seed=0)
        async for _ in self.synthesize(request):
            pass

    async def close(self) -> None:
        if self._worker is not None:
            await self._worker.stop()
        if self._g2p is not None:
            self._g2p.shutdown()

    def health(self) -> str | None:
        return self._worker.health() if self._worker is not None else None

    # -- requests -----------------------------------------------------------------------------
    def voices(self) -> list[Voice]:
        return self._bank.voices() if self._bank else []

    async def add_voice(self, voice: NewVoice) -> Voice:
        return await self._saved_voices().add(voice)

    async def remove_voice(self, name: str) -> None:
        await self._saved_voices().remove(name)

    def _saved_voices(self) -> custom_voices.SavedVoices:
        if self._saved is None:
            raise ServiceUnavailable("Kokoro is still loading; retry shortly.")
        return self._saved

    def check_work(self, request: KokoroRequest, phonemes: int, chars: int) -> None:
        """Bound the work by phonemes, not characters: digits and symbols spell out to far more speech."""
        request.phonemes += phonemes
        request.chars += chars
        budget = self.settings.max_phonemes
        if request.phonemes > budget:
            raise InputTooLong(
                f"The input expands to more than {budget} phonemes, the most this server speaks for one request "
                f"(TTS_KOKORO_MAX_PHONEMES; {request.phonemes} after {request.chars} characters: numbers and "
                "symbols are spelled out)."
            )

    async def open_session(self, params: SessionParams) -> KokoroSession:
        if self._worker is None:
            raise ServiceUnavailable("Kokoro is still loading; retry shortly.")
        mix = self._bank.resolve(params.voice)
        lang_code = lang_code_for(params.language, self._bank.lang_codes[mix.primary])
        # Builds the language's pipeline on first use; a missing G2P extra surfaces here as a 400.
        if lang_code not in self._languages_ready:
            await self._g2p.on_every_thread(lambda phonemizer: phonemizer.pipeline(lang_code))
            self._languages_ready.add(lang_code)
        if params.word_timestamps and lang_code not in "ab":
            raise Unsupported(
                f"Word timestamps from {self.model_id} are available for English only, not '{params.language}'.",
                param="word_timestamps",
            )
        request = KokoroRequest(
            pack=self._bank.pack(mix),
            speed=params.speed,
            seed=params.seed if params.seed is not None else random.SystemRandom().getrandbits(62),
            lang_code=lang_code,
            sample_rate=params.output.sample_rate or SAMPLE_RATE,
            encoding=params.output.pcm_encoding,
            word_timestamps=params.word_timestamps,
        )
        segmenter = TextSegmenter(
            first_chars=self.settings.first_segment_chars,
            max_chars=self.settings.segment_chars,
            min_chars=self.settings.segment_min_chars,
            never_chars=NEVER_SEGMENT_CHARS,
        )
        # misaki's markup (``[word](/phonemes/)``) is English G2P's: IPA entries apply there only.
        pronouncer = Pronouncer(params.pronunciations, phonemes=lang_code in "ab")
        return KokoroSession(self, params, segmenter, request, pronouncer)

    # -- used by sessions ---------------------------------------------------------------------
    def _items(
        self,
        request: KokoroRequest,
        chunks: list[PhonemeChunk],
        final: bool,
        restorer: WordRestorer[Span] | None = None,
        after: PhonemeChunk | None = None,
    ) -> None:
        """Queue phoneme chunks as model inputs, in order (event loop); ``final``: the input's last segment.

        Each is fed with the request's earlier chunks and the next one (``after`` for the last of these,
        when it is already phonemized) as context (``context.py``).
        """
        vocab = self._model.vocab
        for number, chunk in enumerate(chunks, 1):
            before: list[str] = []
            following = None
            if self.settings.segment_context:
                before = request.spoken
                following = chunks[number].phonemes if number < len(chunks) else after.phonemes if after else None
            context = with_context(chunk.phonemes, before, following, vocab, self._model.context_length)
            spans = None
            if request.word_timestamps and chunk.tokens:
                spans = token_spans(chunk.phonemes, chunk.tokens, vocab)
                if spans is not None and restorer is not None:  # name the input's words, not replacements
                    spans = restorer.feed(spans, final=True)
            # Built on the CPU: a host-to-device copy here would synchronise the event loop with the GPU's
            # stream; the batched front moves the whole padded batch in one copy on the worker thread.
            input_ids = torch.tensor(context.input_ids, dtype=torch.long)
            with_text = context.left or context.right
            item = new_item(request, context.phonemes if with_text else len(chunk.phonemes), input_ids, spans)
            if with_text:
                item.keep, item.warm = context.keep, context.warm
                item.left_context = context.left
            item.last = final and number == len(chunks)
            request.spoken.append(chunk.phonemes)
            request.chunks.append(item)

    def stats(self) -> dict[str, Any]:
        stats = self._worker.snapshot() if self._worker else {}
        if self.batcher is not None:
            stats.update(self.batcher.stats())
            stats["audio_seconds"] = round(self.batcher.audio_seconds, 3)
            stats["synthesis_seconds"] = round(self.batcher.synthesis_seconds, 3)
        return stats


class KokoroSession(WorkerSession):
    """Segments go to G2P one at a time, in order; their chunks join the request's job."""

    def __init__(
        self,
        engine: KokoroEngine,
        params: SessionParams,
        segmenter: TextSegmenter,
        request: KokoroRequest,
        pronouncer: Pronouncer | None = None,
    ) -> None:
        super().__init__(params, segmenter)
        self._engine = engine
        self._request = request
        self._pronouncer = pronouncer or Pronouncer(())
        self._restorer: WordRestorer[Span] | None = None
        if self._pronouncer and request.word_timestamps:
            self._restorer = WordRestorer(lambda span: span[0], lambda word, spans: (word, spans[0][1], spans[-1][2]))
        self._segments: asyncio.Queue[str | None] = asyncio.Queue()
        self._feeder: asyncio.Task[None] | None = None
        self._input_ended = False

    def _submit(self) -> Job[KokoroRequest]:
        job = self._engine._worker.submit(self._request, priority=self.params.priority)
        self._feeder = asyncio.create_task(self._phonemize(job), name=f"kokoro-g2p-{self.params.request_id}")
        return job

    async def _release(self, job: Job[KokoroRequest], segments: list[str]) -> None:
        for segment in segments:
            self._segments.put_nowait(segment)

    async def _end_input(self, job: Job[KokoroRequest]) -> None:
        self._input_ended = True
        self._segments.put_nowait(None)

    async def close(self) -> None:
        await super().close()
        if self._feeder is not None and not self._feeder.done():
            self._feeder.cancel()

    async def _phonemize(self, job: Job[KokoroRequest]) -> None:
        request, engine = self._request, self._engine
        held: list[PhonemeChunk] = []  # the newest chunk, waiting for the next segment's as its context
        try:
            while (segment := await self._segments.get()) is not None:
                if job.cancelled:
                    return
                spoken = self._pronouncer.rewrite(segment)  # the pronunciation dictionary, whole words
                if self._restorer is not None:
                    self._restorer.add(spoken)
                urgent = not request.spoken  # this segment's G2P stands between the request and its first audio
                chunks = await engine._g2p.run(
                    FIRST if urgent else LATER, lambda ph, text=spoken.text: ph.chunks(text, request.lang_code)
                )
                engine.check_work(request, sum(len(c.phonemes) for c in chunks), len(segment))
                # Only the end-of-input mark left behind this segment: its last chunk ends the request.
                final = self._input_ended and self._segments.qsize() == 1
                # The newest chunk waits for the next segment's phonemes (its right context) only when that
                # segment is here already: never for text still to come.
                more = engine.settings.segment_context and self._segments.qsize() > int(self._input_ended)
                chunks = held + chunks
                held = chunks[-1:] if more and chunks else []
                ready = chunks[: len(chunks) - len(held)]
                if ready:
                    engine._items(request, ready, final, self._restorer, after=held[0] if held else None)
                    engine._worker.wake()
            if held:  # the input ended (cancelled sessions return above): no right context after all
                engine._items(request, held, True, self._restorer)
            request.input_done = True
            engine._worker.wake()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            job.fail(as_tts_error(exc))
            job.cancel()
