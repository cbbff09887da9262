"""Orpheus's LM on vLLM: each text segment is a vLLM request whose token deltas feed the SNAC stream.

vLLM's ``AsyncLLM`` does the batching, paged KV cache, CUDA graphs, tensor parallelism and
quantization; :mod:`vllm_driver` turns a session's segments into vLLM requests and their streamed
tokens into frames and SNAC windows for the codec stage, exactly as the transformers scheduler does.
vLLM runs on its own thread and event loop (its engine core is a separate process), so the server's
loop only enqueues, as with the transformers worker. Admission is ours: at most ``max_queue_size``
requests in flight, then 429.

Health, as the :class:`engines.worker.BatchWorker`'s: the driver thread exiting, vLLM's engine core
dying (``AsyncLLM.errored``: its process is gone) or no token arriving for ``watchdog_s`` while
sequences are in flight marks the runner failed (:attr:`VllmRunner.fault`). Every request it holds
then fails at once with a 503 (queued or running), new ones are refused, and :meth:`health` reports
it so the server marks the model failed and restarts it.

Versions: vLLM >= 0.32 builds its V2 model runner wherever Triton is present (CUDA) and the V1
runner elsewhere (the CPU build); the two take different logits-processor classes, so the engine
config is built once to learn the runner, then with the matching :mod:`vllm_slots` processor.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

from engines.errors import Overloaded, ServiceUnavailable
from engines.hub import WeightsUnavailable
from engines.job import Job
from engines.orpheus.adapters import Adapter, vllm_lora_args
from engines.orpheus.codec_stage import CodecStage
from engines.orpheus.requests import OrpheusRequest
from engines.orpheus.settings import OrpheusSettings
from engines.orpheus.vllm_driver import VllmDriver

logger = logging.getLogger(__name__)


class _VllmJob(Job):
    """A job whose cancellation also cancels its task on vLLM's loop (so vLLM aborts at once)."""

    runner: VllmRunner

    def cancel(self) -> None:
        super().cancel()
        self.runner.cancelled(self)


class VllmRunner(VllmDriver):
    def __init__(
        self,
        settings: OrpheusSettings,
        lm_path: Path,
        tokenizer: Any,
        codec: CodecStage,
        max_model_len: int,
        adapters: dict[str, Adapter] | None = None,
    ) -> None:
        super().__init__(settings, tokenizer, codec, max_model_len, adapters)
        self.lm_path = lm_path
        self.max_queue_size = settings.max_queue_size
        self.watchdog_s: float | None = settings.watchdog_s
        #: Why this runner stopped serving (None while healthy); see the module docstring.
        self.fault: str | None = None
        self.llm: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._jobs: dict[Job, asyncio.Task | None] = {}  # in flight: until completed, failed or cancelled
        # Under self._lock: the codec thread, vLLM's loop and the server's loop all take jobs out.
        self._stats.update(dict.fromkeys(("jobs_completed", "jobs_cancelled", "jobs_failed"), 0))

    # -- lifecycle (blocking; called off the server's loop) ---------------------------------------
    def engine_args(self, processor: str) -> Any:
        from vllm.engine.arg_utils import AsyncEngineArgs

        s = self.settings
        device = s.resolved_device()
        return AsyncEngineArgs(
            model=str(self.lm_path),
            skip_tokenizer_init=True,  # prompts arrive as ids; outputs are ids
            dtype=s.resolved_dtype(device),
            max_model_len=self.max_model_len,
            gpu_memory_utilization=s.gpu_memory_utilization,
            max_num_seqs=s.max_num_seqs,
            quantization=s.quantization,
            enforce_eager=s.enforce_eager,
            tensor_parallel_size=s.tensor_parallel_size,
            logits_processors=[processor],
            disable_log_stats=True,
            **vllm_lora_args(s, self.adapters),
            # Requests carry the tenant's class (SessionParams.priority; lower first, as here): vLLM
            # admits by it and preempts lower-priority sequences for higher ones when it is full.
            scheduling_policy="priority",
        )

    def engine_config(self) -> Any:
        """vLLM's config, carrying the slot processor of the model runner that config selects."""
        from vllm.usage.usage_lib import UsageContext

        from engines.orpheus import vllm_slots

        config = self.engine_args(vllm_slots.V1).create_engine_config(UsageContext.ENGINE_CONTEXT)
        processor = vllm_slots.processor_for(config)
        logger.info("orpheus (vLLM): slot processor %s for the model runner vLLM selected", processor)
        if processor != vllm_slots.V1:
            config = self.engine_args(processor).create_engine_config(UsageContext.ENGINE_CONTEXT)
        return config

    def start(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                try:
                    from vllm.v1.engine.async_llm import AsyncLLM

                    self.llm = AsyncLLM.from_vllm_config(self.engine_config(), disable_log_stats=True)
                    loop.run_until_complete(self._load_adapters())
                    self.loop = loop
                except BaseException as exc:  # reported to load(), which fails the model's readiness
                    failure.append(exc)
                    if self.llm is not None:  # started, then an adapter failed: end its engine core's processes
                        self.llm.shutdown()
                        self.llm = None
                    return
                finally:
                    ready.set()
                loop.run_forever()
            finally:
                _close(loop)

        self._thread = threading.Thread(target=run, name="tts-orpheus-vllm", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    async def _load_adapters(self) -> None:
        """Load every adapter into vLLM now, so one its LoRA layers cannot take fails the load, not a request."""
        for adapter in self.adapters.values():
            try:
                loaded = await self.llm.add_lora(self.lora_request(adapter))
            except Exception as exc:
                raise WeightsUnavailable(f"vLLM could not load the Orpheus adapter at {adapter.path}: {exc}") from exc
            if not loaded:
                raise WeightsUnavailable(f"vLLM refused the Orpheus adapter at {adapter.path}.")
        if self.adapters:
            logger.info("orpheus (vLLM): %d LoRA adapters loaded", len(self.adapters))

    async def stop(self) -> None:
        loop = self.loop
        if loop is None:
            return
        self.loop = None  # refuse new requests; jobs still held fail here
        self._fail_all(ServiceUnavailable("The server is shutting down."))
        llm = self.llm

        def shutdown() -> None:
            try:
                if llm is not None:
                    llm.shutdown()  # also ends a hung or dead engine core's processes
            except Exception:
                logger.exception("orpheus (vLLM): shutdown failed")
            finally:
                loop.stop()  # the thread then cancels what is left and closes the loop

        try:
            loop.call_soon_threadsafe(shutdown)
        except RuntimeError:  # the loop is already closed: the thread has ended
            pass
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 60)
        self.llm = None

    # -- health (any thread) ----------------------------------------------------------------------
    def health(self) -> str | None:
        """None while vLLM serves; else why not. Detecting a failure here also fails its requests."""
        if self.fault is None and self.loop is not None:
            reason = self._diagnose()
            if reason is not None:
                self._die(reason)
        return self.fault

    def _diagnose(self) -> str | None:
        if self._thread is not None and not self._thread.is_alive():
            return "the vLLM driver thread exited"
        if self.llm is not None and self.llm.errored:
            return "vLLM's engine core died"
        stalled = time.monotonic() - self._progress
        if self.watchdog_s and self._sequences > 0 and stalled > self.watchdog_s:
            return f"vLLM generated no token for {self.watchdog_s:g} s with {self._sequences} sequences in flight"
        return None

    def _die(self, reason: str) -> None:
        """Stop serving for good: fail every request now (503), refuse new ones. Any thread."""
        with self._lock:
            if self.fault is None:
                self.fault = reason
                logger.error("orpheus (vLLM) failed: %s", reason)
        self._fail_all(
            ServiceUnavailable(
                f"The canopylabs/orpheus-3b-0.1-ft model failed ({self.fault}) and is restarting; retry shortly.",
                retry_after="5",
            )
        )

    def _fail_all(self, error: Exception) -> None:
        with self._lock:
            held = list(self._jobs.items())
        for job, _ in held:
            job.fail(error)
            self.completed(job)
        tasks = [task for _, task in held if task is not None]
        loop = self.loop
        if tasks and loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(lambda: [task.cancel() for task in tasks])  # vLLM aborts them
            except RuntimeError:  # closed meanwhile
                pass

    # -- the server's loop ------------------------------------------------------------------------
    @property
    def load(self) -> int:
        with self._lock:
            jobs = list(self._jobs)
        return sum(not job.finished and not job.cancelled for job in jobs)

    def submit(self, state: OrpheusRequest, priority: int = 0) -> Job[OrpheusRequest]:
        loop = self.loop
        if self.fault is not None:
            raise ServiceUnavailable(
                f"The canopylabs/orpheus-3b-0.1-ft model failed ({self.fault}); retry shortly.", retry_after="5"
            )
        if loop is None:
            raise ServiceUnavailable("The server is shutting down.")
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
        job.priority = priority
        with self._lock:
            self._jobs[job] = None
        loop.call_soon_threadsafe(self._start_job, job)
        return job

    def wake(self) -> None:
        """New text for some session: every request task looks at its inbox again."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: [event.set() for event in self._wakes.values()])

    def cancelled(self, job: Job) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._cancel_task, job)
            except RuntimeError:  # closed meanwhile
                pass

    def completed(self, job: Job) -> None:
        """The codec stage (or the request's task, or a failure) finished a job; counted once."""
        with self._lock:
            if job not in self._jobs:
                return
            del self._jobs[job]
            self._stats["jobs_failed" if job.failed else "jobs_completed"] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            jobs = [job for job in self._jobs if not job.finished and not job.cancelled]
            counts = {key: self._stats[key] for key in ("jobs_completed", "jobs_cancelled", "jobs_failed")}
        # Waiting: a vLLM sequence submitted and no token back yet (vLLM's own queue, or its prefill).
        queued = sum(1 for job in jobs if job.steps == 0 and job.state.generating())
        return {
            "queued": queued,
            "active": len(jobs) - queued,
            "max_queue_size": self.max_queue_size,
            "queue_wait_seconds": self.queue_wait.snapshot(),
            "lm_batch_size_histogram_buckets": self.batch_sizes.snapshot(),
            "buffered_audio_seconds": round(sum(job.buffered_seconds for job in jobs), 3),
            "fault": self.fault,
            **counts,
        }

    def lm_stats(self) -> dict[str, Any]:
        with self._lock:
            stats = {k: v for k, v in self._stats.items() if not k.startswith("jobs_")}
        stats["lm_rows"] = self._sequences
        stats["max_model_len"] = self.max_model_len
        llm = self.llm
        stats["vllm_unfinished_requests"] = llm.get_num_unfinished_requests() if llm is not None else 0
        stats["synthesis_seconds"] = round(stats["synthesis_seconds"], 3)
        return stats

    # -- vLLM's loop ------------------------------------------------------------------------------
    def _start_job(self, job: Job[OrpheusRequest]) -> None:
        with self._lock:
            if job not in self._jobs:  # failed (a fault, a shutdown) before it started
                return
            if job.cancelled:
                del self._jobs[job]
                self._stats["jobs_cancelled"] += 1
                return
            self._wakes[job] = asyncio.Event()
            self._jobs[job] = asyncio.get_running_loop().create_task(self._serve(job))

    def _cancel_task(self, job: Job) -> None:
        """The reader left (or closed after the end): whoever takes the job out counts it, once."""
        with self._lock:
            if job not in self._jobs:
                return
            task = self._jobs.pop(job)
            self._stats["jobs_failed" if job.failed else "jobs_completed" if job.finished else "jobs_cancelled"] += 1
        if task is not None and not task.done():
            task.cancel()

    def _engine_failed(self) -> bool:
        """A request failed: was it the engine core (then the whole model fails, 503) or this request?"""
        if self.llm is not None and self.llm.errored:
            self._die("vLLM's engine core died")
            return True
        return False


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on the runner's loop, let it unwind, and close the loop."""
    try:
        tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=10))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except Exception:
        logger.exception("orpheus (vLLM): closing the loop failed")
    finally:
        loop.close()
