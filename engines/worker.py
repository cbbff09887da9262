"""A background thread that owns a model and serves many requests in steps.

HTTP handlers only enqueue (:meth:`BatchWorker.submit`); the worker thread admits queued jobs
into an active set of at most ``max_batch_size``, waits up to ``max_wait_ms`` for a batch to fill,
and calls the engine's ``step`` with the active jobs. A step advances every job in the batch by one
unit of work (a text segment for Kokoro, a decode step for an LM) and emits results through each
job's own output queue. Jobs join and leave the batch at step boundaries, so a cancelled request
stops within one step and a new one starts without waiting for the others to finish.

Health: anything that escapes a step's own error handling (batch selection, ``on_leave``, the loop
itself) kills the worker, and a step or an ``on_leave`` (cache surgery) that makes no progress for
``watchdog_s`` counts as dead too. ``is_ready`` runs under the worker's lock, so it must only read
flags (Kokoro: is the G2P result in; Orpheus: is there text or a free slot), never wait.
A dead worker records why in :attr:`BatchWorker.fault`, fails every queued and active job with a
503 at once (nobody hangs) and refuses new ones; :meth:`BatchWorker.health` reports it so the
server can mark the model failed and restart it. An exception in ``is_ready`` fails that job only.

Backpressure lives in :class:`engines.job.Job` (``max_buffered_s``): a backlogged job is left out
of steps until its consumer catches up.

Priority: queued jobs are admitted best class first, with aging (:mod:`engines.wait_queue`). When
the batch is full and a queued job of a better class waits, the worst active job is *parked*: back
to the queue, its state intact, resumed later where it stopped (engines decide what parking costs
them; Orpheus frees the job's cache rows and recomputes them on return). So a queue and a batch
full of ``batch`` work delay an ``interactive`` request by at most the step in progress.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from engines.device import bind_thread
from engines.errors import Overloaded, ServiceUnavailable, as_tts_error
from engines.histogram import LATENCY_BUCKETS, Histogram
from engines.job import Job
from engines.memory import release_free_memory
from engines.wait_queue import AGING_STEPS, WaitQueue

logger = logging.getLogger(__name__)

StepFn = Callable[[Sequence[Job[Any]]], None]


class BatchWorker:
    """Owns a model on one thread; see the module docstring."""

    def __init__(
        self,
        name: str,
        step: StepFn,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue_size: int,
        on_leave: Callable[[Job[Any]], None] | None = None,
        is_ready: Callable[[Job[Any]], bool] | None = None,
        watchdog_s: float | None = None,
        max_buffered_s: float | None = None,
        device: Any = None,
        aging_steps: int = AGING_STEPS,
        preempt: bool = True,
    ) -> None:
        self.name = name
        self.device = device  # the model's device: the worker thread binds it (cuda:N) before any step
        self._step = step
        self._on_leave = on_leave
        self._is_ready = is_ready
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue_size = max_queue_size
        self._pending = WaitQueue(aging_steps)
        self.preempt = preempt  # park a worse active job for a better queued one (see the module docstring)
        self._submitted = 0
        self._active: list[Job[Any]] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.watchdog_s = watchdog_s
        self.max_buffered_s = max_buffered_s
        #: Why this worker stopped serving (None while healthy); see the module docstring.
        self.fault: str | None = None
        self._progress = time.monotonic()  # last sign of life: a step started or ended, a job emitted
        self._in_step = False  # inside a call into the engine (step, on_leave): what the watchdog times
        self.queue_wait = Histogram(LATENCY_BUCKETS)  # seconds from submit to a job's first step
        self._stats_lock = threading.Lock()
        self.stats: dict[str, Any] = {
            "steps": 0,
            "jobs_completed": 0,
            "jobs_cancelled": 0,
            "jobs_failed": 0,
            "max_batch_size_seen": 0,
            "batch_size_histogram": collections.Counter(),
            # Steps that started at least one request: do concurrent arrivals share their first step?
            "first_step_batch_histogram": collections.Counter(),
            "jobs_parked": 0,  # active jobs sent back to the queue for a better-priority one
        }

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"tts-worker-{self.name}", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            # A dead or hung worker is not waited for: its jobs have already failed.
            await asyncio.to_thread(self._thread.join, 1 if self.fault else 30)
        for job in [*self._pending, *self._active]:
            job.fail(ServiceUnavailable("The server is shutting down."))

    def health(self) -> str | None:
        """None while the worker serves; else why not. Detecting a hang here also fails its jobs."""
        if self.fault is not None:
            return self.fault
        if self._thread is not None and not self._thread.is_alive() and not self._stopping:
            self._die("the worker thread exited")
        elif self.watchdog_s and self._in_step and time.monotonic() - self._progress > self.watchdog_s:
            self._die(f"a step made no progress for {self.watchdog_s:g} s")
        return self.fault

    def _die(self, reason: str) -> None:
        """Stop serving for good: fail every job now (503), refuse new ones. Any thread."""
        with self._cond:
            if self.fault is None:
                self.fault = reason
                logger.error("%s: worker failed: %s", self.name, reason)
            jobs = [*self._pending, *self._active]
            self._cond.notify_all()
        error = ServiceUnavailable(
            f"The {self.name} model failed ({self.fault}) and is restarting; retry shortly.", retry_after="5"
        )
        for job in jobs:
            job.fail(error)

    def _beat(self) -> None:
        self._progress = time.monotonic()

    # -- submission (event loop) --------------------------------------------------------------
    @property
    def load(self) -> int:
        """Requests holding a place: queued ones whose client is still there, and active ones."""
        return sum(not job.cancelled for job in self._pending) + len(self._active)

    def submit(self, state: Any, priority: int = 0) -> Job[Any]:
        job: Job[Any] = Job(
            state,
            asyncio.get_running_loop(),
            max_buffered_s=self.max_buffered_s,
            on_drained=self.wake,
            on_emit=self._beat,
        )
        with self._cond:
            if self.fault is not None:
                raise ServiceUnavailable(
                    f"The {self.name} model failed ({self.fault}); retry shortly.", retry_after="5"
                )
            if self._stopping:
                raise ServiceUnavailable("The server is shutting down.")
            if self.load >= self.max_queue_size:
                raise Overloaded(
                    f"The server is at capacity for this model ({self.max_queue_size} requests). Retry shortly."
                )
            job.priority = priority
            self._submitted += 1
            job.seq = self._submitted
            self._pending.push(job)
            self._cond.notify()
        return job

    def snapshot(self) -> dict[str, Any]:
        with self._stats_lock:
            stats = dict(self.stats)
            for key in ("batch_size_histogram", "first_step_batch_histogram"):
                stats[key] = dict(self.stats[key])
        stats.update(
            queued=len(self._pending),
            active=len(self._active),
            max_queue_size=self.max_queue_size,
            queue_wait_seconds=self.queue_wait.snapshot(),
            # Audio made and not yet taken by readers: what backpressure bounds (max_buffered_s per job).
            buffered_audio_seconds=round(sum(job.buffered_seconds for job in self._jobs()), 3),
            fault=self.fault,
        )
        return stats

    def _jobs(self) -> list[Job[Any]]:
        with self._cond:  # the worker thread mutates both lists
            return [*self._pending, *self._active]

    # -- worker thread ------------------------------------------------------------------------
    def _count(self, counter: str, batch_size: int | None = None) -> None:
        with self._stats_lock:
            self.stats[counter] += 1
            if batch_size is not None:
                self.stats["batch_size_histogram"][batch_size] += 1
                self.stats["max_batch_size_seen"] = max(self.stats["max_batch_size_seen"], batch_size)

    def _leave(self, job: Job[Any], counter: str) -> None:
        """Take a job out for good. Called without the lock: on_leave may be slow (cache surgery)."""
        self._count(counter)
        if self._on_leave is not None:
            with self._engine_call():
                try:
                    self._on_leave(job)
                except Exception:  # a cleanup failure must not take the worker down
                    logger.exception("%s: on_leave failed", self.name)
        job.finish()

    @contextlib.contextmanager
    def _engine_call(self) -> Iterator[None]:
        """Time a call into the engine: one that makes no progress for ``watchdog_s`` is a hang."""
        self._in_step = True
        self._beat()
        try:
            yield
        finally:
            self._in_step = False
            self._beat()

    def _next_batch(self) -> list[Job[Any]] | None:
        hold_until: float | None = None  # when to stop waiting for jobs that are about to be ready
        while True:
            leaving: list[Job[Any]] = []
            with self._cond:
                if not self._stopping and self.fault is None and not self._pending and not self._active:
                    self._cond.release()  # idle now: return the busy spell's freed memory, off the lock
                    try:
                        release_free_memory()
                    finally:
                        self._cond.acquire()
                while not self._stopping and self.fault is None and not self._pending and not self._active:
                    self._cond.wait()
                if self._stopping or self.fault is not None:
                    return None
                # A fresh batch waits briefly for company, so concurrent arrivals share a step.
                if not self._active and self.max_wait_s > 0:
                    deadline = time.monotonic() + self.max_wait_s
                    while len(self._pending) < self.max_batch_size and not self._stopping:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                # Cancelled jobs leave from the queue too, so dead requests never cause a 429. So do
                # jobs finished from another thread (a codec stage, a failed is_ready).
                leaving = [j for j in (*self._pending, *self._active) if j.cancelled or j.finished]
                for job in leaving:
                    (self._active if job in self._active else self._pending).remove(job)
                # Jobs whose next unit of work is not prepared yet sit out. One that has run and now waits
                # (a realtime item between sentences, a reader far behind) keeps its place but not its
                # slot: queued jobs are admitted until max_batch_size jobs can run; a job that has not run
                # yet (its first text still in G2P) counts as one that can.
                ready = [j for j in self._active if self._ready(j)]
                runnable = len(ready) + sum(1 for j in self._active if j.steps == 0 and j not in ready)
                while self._pending and runnable < self.max_batch_size:
                    job = self._pending.best()
                    self._pending.take(job)
                    self._active.append(job)
                    runnable += 1
                    if self._ready(job):
                        ready.append(job)
                # Full: a queued job of a better class takes the place of the worst active one now.
                while self.preempt and self._pending:
                    job = self._pending.best()
                    victim = self._pending.victim(job, self._active)
                    if victim is None:
                        break
                    self._active.remove(victim)
                    if victim in ready:
                        ready.remove(victim)
                    self._pending.push(victim)
                    self._pending.take(job)
                    self._active.append(job)
                    if self._ready(job):
                        ready.append(job)
                    self._count("jobs_parked")
                if not ready and self._active and not leaving:
                    self._cond.wait(0.05)
                    continue
                # Requests that arrived together share their first step: a job that has never run
                # and is still preparing (G2P) is worth up to max_wait_ms. A lone request waits for
                # nobody, and the wait is once per batch, so arrivals can never starve a step.
                arriving = len(ready) < len(self._active) and any(j.steps == 0 and j not in ready for j in self._active)
                if ready and arriving and self.max_wait_s > 0 and not leaving:
                    now = time.monotonic()
                    hold_until = hold_until or now + self.max_wait_s
                    if now < hold_until:
                        self._cond.wait(min(hold_until - now, 0.05))
                        continue
            for job in leaving:
                # A job finished elsewhere (the codec stage) is also "cancelled" once its reader has
                # seen the end and closed: what it did first decides how it counts.
                self._leave(
                    job, "jobs_failed" if job.failed else "jobs_completed" if job.finished else "jobs_cancelled"
                )
            if self.fault is not None:  # an on_leave above hung and was declared dead meanwhile
                return None
            if ready or not self._active:
                return ready

    def _ready(self, job: Job[Any]) -> bool:
        """``is_ready``, with its failure confined to the job it was asked about."""
        if self._is_ready is None:
            return True
        try:
            return bool(self._is_ready(job))
        except Exception as exc:
            logger.exception("%s: is_ready failed for one job", self.name)
            job.fail(as_tts_error(exc))
            return False

    def wake(self) -> None:
        """Tell the worker that a waiting job has become ready."""
        with self._cond:
            self._cond.notify()

    def _run(self) -> None:
        try:
            bind_thread(self.device)
            self._serve()
        except BaseException as exc:  # anything outside a step: the worker is gone, and says so
            logger.exception("%s: worker loop failed", self.name)
            self._die(f"worker loop failed: {type(exc).__name__}")

    def _serve(self) -> None:
        while self.fault is None:
            batch = self._next_batch()
            if batch is None:
                return
            if not batch:
                continue
            self._count("steps", batch_size=len(batch))
            with self._cond:
                self._pending.steps += 1
            now = time.monotonic()
            if any(job.steps == 0 for job in batch):
                with self._stats_lock:
                    self.stats["first_step_batch_histogram"][len(batch)] += 1
            for job in batch:
                if job.steps == 0:
                    self.queue_wait.observe(now - job.submitted_at)
                job.steps += 1
            with self._engine_call():
                try:
                    self._step(batch)
                except Exception as exc:  # a failed step fails its batch, never the worker
                    logger.exception("%s: step failed", self.name)
                    for job in batch:
                        job.fail(as_tts_error(exc))
            if self.fault is not None:  # declared hung meanwhile: its jobs are failed, the lists are void
                return
            for job in batch:
                if job.finished:
                    self._active.remove(job)
                    self._leave(job, "jobs_failed" if job.failed else "jobs_completed")
                elif job.cancelled:
                    self._active.remove(job)
                    self._leave(job, "jobs_cancelled")
