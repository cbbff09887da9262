"""Orpheus's LM on vLLM: each text segment is a vLLM request whose token deltas feed the SNAC stream.

vLLM's ``AsyncLLM`` (V1) does the batching, paged KV cache, CUDA graphs, tensor parallelism and
quantization; this module turns a session's segments into vLLM requests and their streamed tokens
into frames and SNAC windows for the codec stage, exactly as the transformers scheduler does:

* prompts come from :func:`tokens.prompt_ids`; sampling is per request (temperature, top_p,
  repetition_penalty, max_tokens, and the segment's own seed, so a seed reproduces a request);
* generation is restricted to audio ids and end of speech (``allowed_token_ids``), and each step to
  the next slot's 4,096 codes by the :mod:`vllm_slots` logits processor;
* a client that leaves cancels its asyncio task: ``AsyncLLM.generate`` then aborts the request and
  vLLM frees its sequence at the next step.

vLLM runs on its own thread and event loop (its engine core is a separate process), so the
server's loop only enqueues, as with the transformers worker. Admission is ours: at most
``max_queue_size`` requests in flight, then 429.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

from engines.errors import Overloaded, ServiceUnavailable, as_tts_error
from engines.histogram import LATENCY_BUCKETS, SIZE_BUCKETS, Histogram
from engines.job import Job
from engines.orpheus.codec_stage import CodecItem, CodecStage
from engines.orpheus.requests import OrpheusRequest, Segment, lagging
from engines.orpheus.tokens import AUDIO_BASE, AUDIO_TOKENS, END_OF_SPEECH, FRAME_TOKENS, prompt_ids

logger = logging.getLogger(__name__)
ALLOWED = [*range(AUDIO_BASE, AUDIO_BASE + AUDIO_TOKENS), END_OF_SPEECH]
SLOTS_PROCESSOR = "engines.orpheus.vllm_slots:OrpheusSlots"


class _VllmJob(Job):
    """A job whose cancellation also cancels its task on vLLM's loop (so vLLM aborts at once)."""

    runner: VllmRunner

    def cancel(self) -> None:
        super().cancel()
        self.runner.cancelled(self)


class VllmRunner:
    def __init__(self, settings: Any, lm_path: Path, tokenizer: Any, codec: CodecStage) -> None:
        self.settings = settings
        self.lm_path = lm_path
        self.tokenizer = tokenizer
        self.codec = codec
        self.max_queue_size = settings.max_queue_size
        self.parallel_segments = settings.orpheus_parallel_segments
        self.llm: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._jobs: dict[Job, asyncio.Task | None] = {}  # in flight (until finished or cancelled)
        self._wakes: dict[Job, asyncio.Event] = {}
        self._ids = 0
        self._lock = threading.Lock()
        self._stats: dict[str, Any] = dict.fromkeys(
            ("jobs_completed", "jobs_cancelled", "jobs_failed", "prefills", "tokens_generated", "frames_invalid"), 0
        )
        self._stats.update(max_lm_batch_size_seen=0, synthesis_seconds=0.0)
        self._sequences = 0  # vLLM requests in flight
        self.queue_wait = Histogram(LATENCY_BUCKETS)  # submit -> first token of the request
        self.batch_sizes = Histogram(SIZE_BUCKETS)  # sequences in flight, sampled at each token delta
        self._busy_since: float | None = None
        self.min_tokens = False  # benchmarks: hold off end of speech, so every request runs its max_tokens

    # -- lifecycle (blocking; called off the server's loop) ---------------------------------------
    def engine_args(self) -> Any:
        from vllm.engine.arg_utils import AsyncEngineArgs

        s = self.settings
        device = s.resolved_device()
        return AsyncEngineArgs(
            model=str(self.lm_path),
            skip_tokenizer_init=True,  # prompts arrive as ids; outputs are ids
            dtype=s.dtype if s.dtype != "auto" else ("bfloat16" if device.startswith("cuda") else "float32"),
            max_model_len=s.orpheus_max_model_len,
            gpu_memory_utilization=s.orpheus_gpu_memory_utilization,
            max_num_seqs=s.orpheus_max_num_seqs,
            quantization=s.orpheus_quantization,
            enforce_eager=s.orpheus_enforce_eager,
            tensor_parallel_size=s.orpheus_tensor_parallel_size,
            logits_processors=[SLOTS_PROCESSOR],
            disable_log_stats=True,
        )

    def start(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            try:
                from vllm.v1.engine.async_llm import AsyncLLM

                self.llm = AsyncLLM.from_engine_args(self.engine_args())
            except BaseException as exc:  # reported to load(), which fails the model's readiness
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="tts-orpheus-vllm", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    async def stop(self) -> None:
        if self.loop is None:
            return
        for job in list(self._jobs):
            job.fail(ServiceUnavailable("The server is shutting down."))
            self.cancelled(job)

        def shutdown() -> None:
            if self.llm is not None:
                self.llm.shutdown()
            self.loop.stop()

        self.loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 60)
        self.loop = None

    # -- the server's loop ------------------------------------------------------------------------
    @property
    def load(self) -> int:
        return sum(not job.finished and not job.cancelled for job in list(self._jobs))  # other threads pop

    def submit(self, state: OrpheusRequest) -> Job[OrpheusRequest]:
        if self.loop is None:
            raise ServiceUnavailable("The server is shutting down.")
        with self._lock:
            if self.load >= self.max_queue_size:
                raise Overloaded(
                    f"The server is at capacity for this model ({self.max_queue_size} requests). Retry shortly."
                )
            job = _VllmJob(
                state,
                asyncio.get_running_loop(),
                max_buffered_s=self.settings.max_buffered_audio_s,
                on_drained=self.wake,
            )
            job.runner = self
            self._jobs[job] = None
        self.loop.call_soon_threadsafe(self._start_job, job)
        return job

    def wake(self) -> None:
        """New text for some session: every request task looks at its inbox again."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(lambda: [event.set() for event in self._wakes.values()])

    def cancelled(self, job: Job) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._cancel_task, job)

    def completed(self, job: Job) -> None:
        """The codec stage (or the request's task) finished or failed a job; counted once."""
        if job in self._jobs:
            self._jobs.pop(job, None)
            self._count("jobs_failed" if job.failed else "jobs_completed")

    def health(self) -> str | None:
        """vLLM runs on its own thread (and engine process); its loop must be alive to serve."""
        if self.loop is not None and self._thread is not None and not self._thread.is_alive():
            return "the vLLM driver thread exited"
        return None

    def snapshot(self) -> dict[str, Any]:
        return {
            "queued": 0,
            "active": self.load,
            "max_queue_size": self.max_queue_size,
            "queue_wait_seconds": self.queue_wait.snapshot(),
            "lm_batch_size_histogram_buckets": self.batch_sizes.snapshot(),
            "jobs_completed": self._stats["jobs_completed"],
            "jobs_cancelled": self._stats["jobs_cancelled"],
            "jobs_failed": self._stats["jobs_failed"],
        }

    def lm_stats(self) -> dict[str, Any]:
        stats = {k: v for k, v in self._stats.items() if not k.startswith("jobs_")}
        stats["lm_rows"] = self._sequences
        unfinished = self.llm.get_num_unfinished_requests() if self.llm is not None else 0
        stats["vllm_unfinished_requests"] = unfinished
        stats["synthesis_seconds"] = round(self._stats["synthesis_seconds"], 3)
        return stats

    def _count(self, key: str, value: int = 1) -> None:
        with self._lock:
            self._stats[key] += value

    # -- vLLM's loop ------------------------------------------------------------------------------
    def _start_job(self, job: Job[OrpheusRequest]) -> None:
        if job.cancelled:
            self._jobs.pop(job, None)
            self._count("jobs_cancelled")
            return
        self._wakes[job] = asyncio.Event()
        self._jobs[job] = asyncio.get_running_loop().create_task(self._serve(job))

    def _cancel_task(self, job: Job) -> None:
        task = self._jobs.pop(job, None)
        if task is not None and not task.done():
            task.cancel()
            if not job.finished:
                self._count("jobs_cancelled")

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
            logger.exception("orpheus (vLLM): request failed")
            for task in running:
                task.cancel()
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
        room = (self.settings.orpheus_max_model_len - len(segment.prompt)) // FRAME_TOKENS * FRAME_TOKENS
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
            allowed_token_ids=ALLOWED,
            detokenize=False,
            output_kind=RequestOutputKind.DELTA,
            extra_args={"orpheus_slots": True},
        )
        self._ids += 1
        self._sequences += 1
        self._count("prefills")
        with self._lock:
            self._stats["max_lm_batch_size_seen"] = max(self._stats["max_lm_batch_size_seen"], self._sequences)
            if self._busy_since is None:
                self._busy_since = time.perf_counter()
        try:
            stream = self.llm.generate({"prompt_token_ids": segment.prompt}, params, request_id=f"orpheus-{self._ids}")
            async for output in stream:
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
            self._sequences -= 1
            if self._sequences == 0 and self._busy_since is not None:
                with self._lock:
                    self._stats["synthesis_seconds"] += time.perf_counter() - self._busy_since
                    self._busy_since = None
            segment.generating = False
        request.flush(job, self.codec.count_audio)

    def _accept(self, job: Job, segment: Segment, tokens: Any, budget: int, final: bool = False) -> None:
        items: list[CodecItem] = []
        for token in tokens:
            if segment.done:
                break
            segment.accept(int(token), budget)
        if final and not segment.done:
            segment.done = True  # vLLM stopped (length limit) without end of speech
        while (window := segment.windows.next_window(final=segment.done)) is not None:
            items.append(CodecItem(job, segment, window))
        self.codec.submit(items)
