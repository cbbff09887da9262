"""Text-to-phoneme work on a few threads, with a request's first segment ahead of everything else.

misaki's pipelines are not thread-safe, so each thread owns its own :class:`Phonemizer`. With one
thread, a long later segment of one request would hold up the first segment of the next, and
concurrent arrivals could never share their first step. Here first segments take priority and
several run at once (G2P is Python and spaCy: the threads mostly overlap where spaCy releases the
GIL, and a short first segment never queues behind a long one).
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from engines.errors import ServiceUnavailable
from engines.kokoro.g2p import Phonemizer

T = TypeVar("T")

FIRST = 0  # priority of a request's first segment (and of validation: a request is waiting on it)
LATER = 1
STOP = 2  # after everything already queued


class G2PPool:
    def __init__(self, repo_id: str, workers: int) -> None:
        self._repo_id = repo_id
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._order = itertools.count()  # FIFO within a priority
        self._everywhere = asyncio.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"kokoro-g2p-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    async def run(self, priority: int, fn: Callable[[Phonemizer], T]) -> T:
        """Run ``fn(phonemizer)`` on a G2P thread; the event loop is never blocked."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((priority, next(self._order), (fn, future, loop)))
        return await future

    async def on_every_thread(self, fn: Callable[[Phonemizer], Any]) -> None:
        """Run ``fn`` once per thread (to build pipelines everywhere at startup)."""
        barrier = threading.Barrier(len(self._threads))

        def everywhere(phonemizer: Phonemizer) -> None:
            try:
                fn(phonemizer)
            finally:  # hold this thread (even when fn failed) so the next task lands on another one
                barrier.wait(timeout=600)

        # One at a time: two interleaved barrier rounds could each hold one thread and wait for the other.
        async with self._everywhere:
            results = await asyncio.gather(
                *(self.run(FIRST, everywhere) for _ in self._threads), return_exceptions=True
            )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def shutdown(self) -> None:
        """Stop the threads; work still queued fails (its requests get a 503) instead of waiting forever."""
        while True:
            try:
                _, _, work = self._queue.get_nowait()
            except queue.Empty:
                break
            if work is not None:
                _, future, loop = work
                _deliver(loop, future, None, ServiceUnavailable("Kokoro is shutting down; retry shortly."))
        for _ in self._threads:
            self._queue.put((STOP, next(self._order), None))

    def _run(self) -> None:
        phonemizer = Phonemizer(self._repo_id)
        while True:
            _, _, work = self._queue.get()
            if work is None:
                return
            fn, future, loop = work
            if future.cancelled():
                continue
            try:
                outcome: tuple[Any, BaseException | None] = (fn(phonemizer), None)
            except BaseException as exc:  # delivered to the awaiting request
                outcome = (None, exc)
            _deliver(loop, future, *outcome)


def _deliver(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, exc: BaseException | None):
    try:
        loop.call_soon_threadsafe(_settle, future, result, exc)
    except RuntimeError:  # that request's event loop is gone: nobody is waiting
        pass


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
