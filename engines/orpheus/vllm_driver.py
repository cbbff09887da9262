"""What runs on the vLLM backend's event loop: a request's segments as vLLM requests, tokens to windows.

* prompts come from :func:`tokens.prompt_ids`; sampling is per request (temperature, top_p,
  repetition_penalty, max_tokens, and the segment's own seed, so a seed reproduces a request);
* each step is narrowed to the next frame slot's 4,096 codes (or end of speech at a frame boundary)
  by the :mod:`vllm_slots` logits processor, which vLLM runs in its engine process;
* a client that leaves cancels its asyncio task: ``AsyncLLM.generate`` then aborts the request and
  vLLM frees its sequence at the next step.

SNAC windows go to the codec stage once per engine step, not once per request: vLLM hands a step's
outputs to every request's stream in one go, and each stream's task then runs in the same turn of
the loop, so the windows they plan are collected and submitted together at the end of that turn.
Submitted one stream at a time, the codec thread woke on the first and started decoding before the
others arrived (the GIL hands the thread over between tasks), and windows due in the same step were
decoded in separate calls. And as the transformers worker's first step does, a fresh batch waits up
to ``max_wait_ms`` for company: requests that arrive together enter vLLM in the same engine step, so
their frames, and their windows, fall due in the same steps rather than one step apart.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

from engines.errors import as_tts_error
from engines.histogram import LATENCY_BUCKETS, SIZE_BUCKETS, Histogram
from engines.job import Job
from engines.orpheus.adapters import Adapter
from engines.orpheus.codec_stage import CodecItem, CodecStage
from engines.orpheus.requests import OrpheusRequest, Segment, lagging
from engines.orpheus.settings import OrpheusSettings
from engines.orpheus.tokens import END_OF_SPEECH, FRAME_TOKENS, prompt_ids

logger = logging.getLogger(__name__)


class VllmDriver(ABC):
    """The per-request coroutines of :class:`vllm_backend.VllmRunner` (which adds lifecycle and health)."""

    llm: Any  # vllm.v1.engine.async_llm.AsyncLLM, set by the runner

    def __init__(
        self,
        settings: OrpheusSettings,
        tokenizer: Any,
        codec: CodecStage,
        max_model_len: int,
        adapters: dict[str, Adapter] | None = None,
    ) -> None:
        self.settings = settings
        self.adapters = adapters or {}
        self._lora_requests: dict[int, Any] = {}
        self.tokenizer = tokenizer
        self.codec = codec
        self.max_model_len = max_model_len
        self.parallel_segments = settings.parallel_segments
        self.min_tokens = False  # benchmarks: hold off end of speech, so every request runs its max_tokens
        self._lock = threading.Lock()  # counters (and the runner's jobs): several threads touch them
        self._stats: dict[str, Any] = dict.fromkeys(("prefills", "tokens_generated", "frames_invalid"), 0)
        self._stats.update(max_lm_batch_size_seen=0, synthesis_seconds=0.0)
        self.queue_wait = Histogram(LATENCY_BUCKETS)  # submit -> first token of the request
        self.batch_sizes = Histogram(SIZE_BUCKETS)  # sequences in flight, sampled at each token delta
        self._wakes: dict[Job, asyncio.Event] = {}
        self._ids = 0
        self._sequences = 0  # vLLM requests in flight
        self._progress = time.monotonic()  # the last token delta (or the first sequence of a busy spell)
        self._busy_since: float | None = None
        self.max_wait_s = settings.max_wait_ms / 1000.0
        self._admission: asyncio.Future | None = None  # the open wait of a fresh batch's first requests
        self._due: list[CodecItem] = []  # windows planned in this turn of the loop, for one codec submit
        self._submit_scheduled = False

    # -- the runner's hooks -----------------------------------------------------------------------
    @abstractmethod
    def completed(self, job: Job) -> None:
        """A job finished (the codec stage, the request's task or a failure): the runner counts it once."""

    @abstractmethod
    def _engine_failed(self) -> bool:
        """Called when a request fails: True if the engine itself failed (and the runner has said so)."""

    def _count(self, key: str, value: int = 1) -> None:
        with self._lock:
            self._stats[key] += value

    # -- a request ----------------------------------------------------------------------------------
    async def _serve(self, job: Job[OrpheusRequest]) -> None:
        request = job.state
        running: dict[asyncio.Task, Segment] = {}
        wake = self._wakes[job]
        try:
            while True:
                request.absorb()
                paused = False
                for segment in request.segments:
                    # A lagging reader's request starts no new segment until it catches up: its reader
                    # draining wakes us; audio still on its way to the job is re-checked every 50 ms.
                    paused = lagging(job)
                    if len(running) >= self.parallel_segments or paused:
                        break
                    if not segment.done and not segment.generating:
                        segment.generating = True
                        running[asyncio.create_task(self._generate(job, segment))] = segment
                if request.input_complete and not running and all(s.done for s in request.segments):
                    break
                wake.clear()
                waiter = asyncio.create_task(wake.wait())
                done, _ = await asyncio.wait(
                    [*running, waiter], return_when=asyncio.FIRST_COMPLETED, timeout=0.05 if paused else None
                )
                waiter.cancel()
                for task in done & running.keys():
                    running.pop(task)
                    task.result()  # a failed segment fails the request
            request.flush(job, self.codec.count_audio)  # e.g. no frames at all: nothing for the codec
            if job.finished:
                self.completed(job)
        except asyncio.CancelledError:
            for task in running:
                task.cancel()  # generate() aborts its vLLM request
            raise
        except Exception as exc:
            for task in running:
                task.cancel()
            if not self._engine_failed():  # the engine's failure fails every request with a 503
                logger.exception("orpheus (vLLM): request failed")
                job.fail(as_tts_error(exc))
                self.completed(job)
        finally:
            self._wakes.pop(job, None)

    async def _generate(self, job: Job[OrpheusRequest], segment: Segment) -> None:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        request = job.state
        if segment.prompt is None:
            segment.prompt = prompt_ids(self.tokenizer, request.voice, segment.text)
        if job.steps == 0:
            await self._company()
        room = (self.max_model_len - len(segment.prompt)) // FRAME_TOKENS * FRAME_TOKENS
        budget = min(request.params.max_tokens, room)
        p = request.params
        params = SamplingParams(
            temperature=p.temperature,
            top_p=p.top_p,
            repetition_penalty=p.repetition_penalty,
            max_tokens=max(1, budget),
            min_tokens=budget if self.min_tokens else 0,
            seed=segment.seed,
            stop_token_ids=[END_OF_SPEECH],
            detokenize=False,
            output_kind=RequestOutputKind.DELTA,
            extra_args={"orpheus_slots": True},  # the slot processor: audio codes of the next slot only
        )
        self._ids += 1
        with self._lock:
            if self._sequences == 0:
                self._progress = time.monotonic()  # the watchdog times a busy spell from its start
                self._busy_since = time.perf_counter()
            self._sequences += 1
            self._stats["prefills"] += 1
            self._stats["max_lm_batch_size_seen"] = max(self._stats["max_lm_batch_size_seen"], self._sequences)
        try:
            stream = self.llm.generate(
                {"prompt_token_ids": segment.prompt},
                params,
                request_id=f"orpheus-{self._ids}",
                lora_request=self.lora_request(request.adapter) if request.adapter else None,
                priority=vllm_priority(job),
            )
            async for output in stream:
                self._progress = time.monotonic()
                tokens = output.outputs[0].token_ids
                if job.steps == 0:
                    job.steps = 1
                    self.queue_wait.observe(time.monotonic() - job.submitted_at)
                self.batch_sizes.observe(self._sequences)
                self._count("tokens_generated", len(tokens))
                self._accept(job, segment, tokens, budget)
                if segment.done:
                    break
            self._accept(job, segment, [], budget, final=True)
            self._count("frames_invalid", segment.invalid_frames)
        finally:
            with self._lock:
                self._sequences -= 1
                if self._sequences == 0 and self._busy_since is not None:
                    self._stats["synthesis_seconds"] += time.perf_counter() - self._busy_since
                    self._busy_since = None
            segment.generating = False
        request.flush(job, self.codec.count_audio)

    def lora_request(self, adapter: Adapter) -> Any:
        """vLLM's handle on an adapter: one per adapter, its id stable, so vLLM keeps its weights loaded."""
        if adapter.lora_id not in self._lora_requests:
            from vllm.lora.request import LoRARequest

            self._lora_requests[adapter.lora_id] = LoRARequest(adapter.name, adapter.lora_id, str(adapter.path))
        return self._lora_requests[adapter.lora_id]

    async def _company(self) -> None:
        """While vLLM is idle, a new request waits up to ``max_wait_ms`` for others to start with."""
        if self._sequences > 0 or self.max_wait_s <= 0:
            return  # joining sequences in flight: nothing to line up with
        if self._admission is None or self._admission.done():
            loop = asyncio.get_running_loop()
            admission = self._admission = loop.create_future()
            loop.call_later(self.max_wait_s, lambda: admission.done() or admission.set_result(None))
        await asyncio.shield(self._admission)  # one waiter leaving (cancelled) ends nobody else's wait

    def _accept(self, job: Job, segment: Segment, tokens: Any, budget: int, final: bool = False) -> None:
        for token in tokens:
            if segment.done:
                break
            segment.accept(int(token), budget)
        if final and not segment.done:
            segment.done = True  # vLLM stopped (length limit) without end of speech
        while (window := segment.windows.next_window(final=segment.done)) is not None:
            self._due.append(CodecItem(job, segment, window))
        if self._due and not self._submit_scheduled:
            self._submit_scheduled = True  # after every task this turn of the loop runs
            asyncio.get_running_loop().call_soon(self._submit_due)

    def _submit_due(self) -> None:
        """End of a turn of the loop: every window planned in it goes to the codec stage at once."""
        due, self._due = self._due, []
        self._submit_scheduled = False
        self.codec.submit(due)


VLLM_AGING_S = 10.0  # seconds since a request arrived that raise its segments' priority by one class


def vllm_priority(job: Job[OrpheusRequest]) -> int:
    """The priority of a segment's sequence: the request's class, less one per ``VLLM_AGING_S`` it has
    existed, so a later segment of a long low-priority request is not starved (vLLM has no aging)."""
    return job.priority - int((time.monotonic() - job.submitted_at) // VLLM_AGING_S)
