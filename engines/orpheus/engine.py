"""The canopylabs/orpheus-3b-0.1-ft engine: a Llama LM speaking SNAC codes, batched across requests.

A session validates and plans the request once (voice, sampling, seed), segments its text as it
arrives and hands each segment to the job. Two LM backends generate the audio tokens
(``orpheus_backend``): transformers, on a :class:`BatchWorker` thread whose step is
:meth:`OrpheusScheduler.step` (scheduler.py, the portable path and the reference), and vLLM
(vllm_backend.py). Both hand SNAC windows to the same codec stage (codec_stage.py), which decodes
them on its own thread; snac_stream.py plans the windows, requests.py keeps the audio in order.

``speed`` (a Kokoro extension) is ignored: Orpheus has no rate control; its authors note that
higher repetition_penalty and temperature make it speak faster.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import torch

from engines.base import Engine, SessionParams, SynthesisRequest, Voice, base_language
from engines.device import free_memory
from engines.errors import InvalidVoice, ServiceUnavailable, Unsupported, UnsupportedLanguage
from engines.job import Job
from engines.orpheus import loader
from engines.orpheus.adapters import Adapter, load_adapters
from engines.orpheus.codec import SnacCodec
from engines.orpheus.codec_stage import CodecStage, resolve_batching
from engines.orpheus.requests import OrpheusRequest, lagging
from engines.orpheus.sampling import SamplingParams, new_seed
from engines.orpheus.scheduler import OrpheusScheduler
from engines.orpheus.settings import OrpheusSettings
from engines.orpheus.slot_cache import rows_that_fit
from engines.orpheus.snac_stream import WindowConfig
from engines.orpheus.tags import orpheus_tags
from engines.orpheus.tokens import SAMPLE_RATE
from engines.pronunciation import Pronouncer
from engines.session import WorkerSession
from engines.text import TextSegmenter
from engines.worker import BatchWorker
from voices import load_catalog

logger = logging.getLogger(__name__)


class OrpheusEngine(Engine):
    sample_rate = SAMPLE_RATE
    languages = frozenset({"en"})
    native_speed = False  # no rate control: the OpenAI route time-stretches instead

    settings: OrpheusSettings

    def __init__(self, model_id: str, settings: OrpheusSettings) -> None:
        super().__init__(model_id, settings)
        catalog = load_catalog("orpheus")["voices"]
        self._voices = [
            Voice(
                id=v["id"],
                name=v["name"],
                language=v.get("language"),
                gender=v.get("gender"),
                description=v.get("description"),
            )
            for v in catalog
        ]
        self._voice_ids = {v.id for v in self._voices}
        self.adapters: dict[str, Adapter] = {}  # lowercased voice name -> LoRA adapter (adapters.py)
        self._scheduler: OrpheusScheduler | None = None
        self.components: loader.OrpheusComponents | None = None
        self._worker: Any = None  # BatchWorker (transformers) or VllmRunner: submit, wake, snapshot, stop
        self._codec: CodecStage | None = None
        self.backend: str | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    @classmethod
    def prefetch(cls, settings: OrpheusSettings) -> list[str]:
        return loader.prefetch(settings)

    async def load(self) -> None:
        s = self.settings
        self.backend = resolve_backend(s.backend, s.resolved_device())
        # First: a wrong adapter path fails the load now, before minutes of loading the model.
        self.adapters = await asyncio.to_thread(load_adapters, s.adapters, self._voice_ids, s.max_lora_rank)
        if self.adapters and self.backend != "vllm":
            logger.warning("orpheus: LoRA adapter voices answer 400 on the %s backend; vLLM serves them", self.backend)
        load = loader.load_for_vllm if self.backend == "vllm" else loader.load_all
        parts = await asyncio.to_thread(load, s)
        self.components = parts
        codec_device = s.codec_device or parts.device  # the LM's device unless placed elsewhere
        codec = await asyncio.to_thread(SnacCodec, parts.snac, codec_device, compile=s.codec_compile)
        await asyncio.to_thread(codec.compile_now)  # minutes on a CPU: before any request or watchdog
        self._codec = CodecStage(
            codec,
            max_batch=resolve_batching(s.codec_batching, codec_device, s.codec_max_batch),
            wait_ms=s.codec_wait_ms,
            on_complete=lambda job: self._worker and self._worker.completed(job),  # None once closed
            watchdog_s=s.watchdog_s,
        )
        if self.backend == "vllm":
            from engines.orpheus.vllm_backend import VllmRunner

            self._codec.start()
            runner = VllmRunner(s, parts.lm_path, parts.tokenizer, self._codec, parts.max_model_len, self.adapters)
            await asyncio.to_thread(runner.start)
            self._worker = runner
            return
        rows = s.resolved_max_batch_size(str(parts.device))
        if s.max_batch_size is None and torch.device(parts.device).type == "cuda":
            # The slot cache is allocated whole at load: the default batch must fit the GPU it is on.
            free = free_memory(parts.device)
            rows = rows_that_fit(parts.model, parts.max_model_len, free, cap=rows)
            logger.info("orpheus: %d KV-cache rows (half the free GPU memory)", rows)
        self._scheduler = OrpheusScheduler(
            parts.model,
            parts.tokenizer,
            self._codec,
            max_rows=rows,
            parallel_segments=s.parallel_segments,
            max_len=parts.max_model_len,
            cuda_graphs=s.cuda_graphs,
        )
        # Every CUDA graph now, while no other thread of this engine touches the device.
        await asyncio.to_thread(self._scheduler.capture_graphs)
        self._codec.start()
        worker = BatchWorker(
            "orpheus",
            self._scheduler.step,
            max_batch_size=rows,
            max_wait_ms=s.max_wait_ms,
            max_queue_size=s.max_queue_size,
            on_leave=self._scheduler.release,
            # A lagging reader's request steps only while it still holds rows (they finish their segment).
            is_ready=lambda job: job.state.has_work() and not (lagging(job) and not job.state.generating()),
            watchdog_s=s.watchdog_s,
            max_buffered_s=s.max_buffered_audio_s,
            device=parts.device,
        )
        worker.completed = lambda job: worker.wake()  # the codec finished a job: the worker retires it
        self._worker = worker
        worker.start()

    async def warmup(self) -> None:
        request = SynthesisRequest(
            model=self.model_id, text="Hello.", voice=self._voices[0].id, seed=0, sampling={"max_tokens": 28}
        )
        async for _ in self.synthesize(request):
            pass

    async def close(self) -> None:
        if self._worker is not None:
            await self._worker.stop()
        if self._codec is not None:
            await asyncio.to_thread(self._codec.stop)
        self._worker = None
        self._codec = None
        self._scheduler = None
        self.components = None

    def health(self) -> str | None:
        worker = self._worker.health() if self._worker is not None else None
        return worker or (self._codec.health() if self._codec is not None else None)

    # -- requests -----------------------------------------------------------------------------
    def voices(self) -> list[Voice]:
        return [*self._voices, *(adapter.voice() for adapter in self.adapters.values())]

    def instruction_prefix(self, instructions: str | None) -> str:
        return orpheus_tags(instructions)

    def _check(self, params: SessionParams) -> SamplingParams:
        """The cheap checks (language, voice, sampling); raises a 400 for a request Orpheus cannot serve."""
        if base_language(params.language) != "en":
            raise UnsupportedLanguage(f"Model '{self.model_id}' speaks only English ('en'), not '{params.language}'.")
        voice = params.voice.lower()
        if voice not in self._voice_ids and voice not in self.adapters:
            known = ", ".join(v.id for v in self.voices())
            raise InvalidVoice(f"Unknown voice '{params.voice}' for {self.model_id}. Available: {known}.")
        if voice in self.adapters and self.backend != "vllm":
            raise Unsupported(
                f"Voice '{params.voice}' is a LoRA adapter, which the vLLM backend serves (TTS_ORPHEUS_BACKEND=vllm); "
                f"this server runs {self.model_id} on {self.backend}.",
                param="voice",
            )
        if params.word_timestamps:
            raise Unsupported(
                f"Model '{self.model_id}' has no word timestamps: it generates audio codes with no alignment "
                "to the text. Use hexgrad/Kokoro-82M or cartesia/sonic for word timings.",
                param="word_timestamps",
            )
        return SamplingParams.resolve(self.settings, params.sampling)

    def plan(self, params: SessionParams) -> OrpheusRequest:
        """Check the request and turn it into the scheduler's state (no text yet, no model work)."""
        sampling = self._check(params)
        adapter = self.adapters.get(params.voice.lower())
        return OrpheusRequest(
            # What the prompt says: the catalog's (and the model's training) spelling, "tara", or the speaker
            # an adapter was trained on.
            adapter.prompt_voice if adapter else params.voice.lower(),
            sampling,
            seed=params.seed if params.seed is not None else new_seed(),
            windows=WindowConfig.from_settings(self.settings),
            fade_samples=int(SAMPLE_RATE * self.settings.join_fade_ms / 1000),
            adapter=adapter,
        )

    def segmenter(self) -> TextSegmenter:
        return TextSegmenter(
            first_chars=self.settings.first_segment_chars,
            max_chars=self.settings.segment_chars,
            min_chars=self.settings.segment_min_chars,
            never_chars=self.settings.segment_chars,  # what one segment's generation holds
        )

    async def open_session(self, params: SessionParams) -> OrpheusSession:
        if self._worker is None:
            raise ServiceUnavailable("Orpheus is still loading; retry shortly.")
        return OrpheusSession(self._worker, params, self.segmenter(), self.plan(params))  # planned once, here

    # -- introspection ------------------------------------------------------------------------
    @property
    def worker(self) -> Any:
        return self._worker

    @property
    def scheduler(self) -> OrpheusScheduler | None:
        return self._scheduler

    @property
    def codec(self) -> CodecStage | None:
        return self._codec

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._worker.snapshot() if self._worker else {}
        stats.update(audio_seconds=0.0, synthesis_seconds=0.0)
        if self._scheduler is not None:
            stats.update(self._scheduler.stats())
        elif self._worker is not None and hasattr(self._worker, "lm_stats"):
            stats.update(self._worker.lm_stats())
        if self._codec is not None:
            stats.update(self._codec.stats())  # includes audio_seconds
        stats["backend"] = self.backend
        return stats


def resolve_backend(setting: str, device: str) -> str:
    """``auto``: vLLM when it is importable and the device is CUDA; else transformers."""
    if setting != "auto":
        return setting
    if not device.startswith("cuda"):
        return "transformers"
    import importlib.util

    return "vllm" if importlib.util.find_spec("vllm") is not None else "transformers"


class OrpheusSession(WorkerSession):
    """Each settled segment joins the request's inbox; the scheduler admits it at its next step."""

    def __init__(self, worker: Any, params: SessionParams, segmenter: TextSegmenter, request: OrpheusRequest) -> None:
        super().__init__(params, segmenter)
        self._worker = worker
        self._request = request
        self._pronouncer = Pronouncer(params.pronunciations)  # text only: /IPA/ entries are left as written

    def _submit(self) -> Job[OrpheusRequest]:
        return self._worker.submit(self._request, priority=self.params.priority)

    async def _release(self, job: Job[OrpheusRequest], segments: list[str]) -> None:
        self._request.add_texts([self._pronouncer.rewrite(segment).text for segment in segments])
        self._worker.wake()

    async def _end_input(self, job: Job[OrpheusRequest]) -> None:
        self._request.close_input()
        self._worker.wake()
