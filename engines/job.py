"""One request inside a :class:`engines.worker.BatchWorker`: its state and its output queue.

The worker thread emits into the job; the request's handler reads :meth:`Job.results` on the event
loop. Every hand-over crosses threads through ``call_soon_threadsafe``, and cancellation is a
``threading.Event`` the worker checks between steps, so closing the reader stops the job within one step.

Backpressure: each job counts the audio it has emitted that its consumer has not taken yet. Past
``max_buffered_s`` the job is *backlogged*: engines leave it out of their steps (its slot waits)
until the consumer catches up, which wakes the worker. A slow reader thus pauses its own
generation, and the memory a request holds stays bounded whatever the length of its input.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from engines.base import chunk_seconds

S = TypeVar("S")
_DONE = object()


class Job(Generic[S]):
    """One request inside the worker. ``state`` is the engine's own per-request data."""

    def __init__(
        self,
        state: S,
        loop: asyncio.AbstractEventLoop,
        *,
        max_buffered_s: float | None = None,
        on_drained: Callable[[], None] | None = None,
        on_emit: Callable[[], None] | None = None,
    ) -> None:
        self.state = state
        self._loop = loop
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._cancelled = threading.Event()
        self._terminal = threading.Lock()  # fail() may come from the event loop, finish() from the worker
        self.finished = False
        self.failed = False
        self.steps = 0  # worker steps this job took part in
        # Scheduling (engines/worker.py): lower is admitted first; waiting earns an aging credit.
        self.priority = 0
        self.seq = 0  # submission order, the tie-break within a priority
        self.waited_steps = 0  # worker steps spent queued (before admission and while parked)
        self.queued_at_step: int | None = None  # the worker's step count when it last joined the queue
        self.submitted_at = time.monotonic()
        self.max_buffered_s = max_buffered_s
        self._buffered_s = 0.0  # audio emitted and not yet taken by the consumer
        self._buffer_lock = threading.Lock()
        self._on_drained = on_drained  # the consumer caught up: the worker may step this job again
        self._on_emit = on_emit  # the worker's progress heartbeat (its watchdog)

    # -- called from the worker thread --------------------------------------------------------
    def emit(self, item: Any) -> None:
        seconds = chunk_seconds(item)
        if seconds:
            with self._buffer_lock:
                self._buffered_s += seconds
        if self._on_emit is not None:
            self._on_emit()
        self._put(item)

    @property
    def buffered_seconds(self) -> float:
        return self._buffered_s

    @property
    def backlogged(self) -> bool:
        """More audio waits for the consumer than ``max_buffered_s``: generate no more for now."""
        return self.max_buffered_s is not None and self._buffered_s >= self.max_buffered_s

    def finish(self) -> None:
        with self._terminal:
            if self.finished:
                return
            self.finished = True
        self._put(_DONE)

    def fail(self, exc: BaseException) -> None:
        with self._terminal:
            if self.finished:
                return
            self.finished = self.failed = True
        self._put(exc)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _put(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone (shutdown): nobody is listening
            self._cancelled.set()

    # -- called from the event loop -----------------------------------------------------------
    def cancel(self) -> None:
        self._cancelled.set()

    async def results(self) -> AsyncIterator[Any]:
        """Yield what the worker emits; closing this iterator cancels the job."""
        try:
            while True:
                item = await self._queue.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                self._taken(item)
                yield item
        finally:
            self.cancel()

    def _taken(self, item: Any) -> None:
        seconds = chunk_seconds(item)
        if not seconds:
            return
        with self._buffer_lock:
            was = self.backlogged
            self._buffered_s -= seconds
            caught_up = was and not self.backlogged
        if caught_up and self._on_drained is not None:
            self._on_drained()
