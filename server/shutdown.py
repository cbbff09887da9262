"""Graceful shutdown: drain within a grace period, end what is left properly, exit.

uvicorn on its own stops listening at the first SIGTERM (so liveness probes fail) and then waits
for every open stream, without limit. Here the first SIGTERM (or SIGINT) starts a *drain* instead:

1. new API requests get 503 in Together's shape (``/ready`` says ``draining``), while ``/health``
   and ``/metrics`` keep answering on the still-open socket;
2. requests in flight have ``shutdown_grace_s`` to finish;
3. then :attr:`Drain.aborted` is set: each stream still open ends with a final SSE error event and
   ``[DONE]`` (a realtime socket with ``conversation.item.tts.failed``), and uvicorn's own shutdown
   follows (it closes the socket, then the engines).

A second signal skips the rest of the grace period (step 3 at once); a third forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import uvicorn

logger = logging.getLogger(__name__)

#: After the abort, how long streams get to send their final events before uvicorn takes over.
ABORT_FLUSH_S = 2.0


class Drain:
    """Shutdown state shared by the app's layers (see the module docstring)."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.draining = False
        self.in_flight = 0  # API requests and websockets now open (server/request_log.py counts them)
        self.aborted = asyncio.Event()
        self.started: float | None = None
        self._on_abort: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()

    def on_abort(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` when the grace period ends (at once if it has); returns an unsubscribe."""
        if self.aborted.is_set():
            callback()
            return lambda: None
        key = next(self._ids)
        self._on_abort[key] = callback
        return lambda: self._on_abort.pop(key, None)

    def begin(self) -> None:
        if not self.draining:
            self.draining = True
            self.started = time.monotonic()
            logger.info("draining: %d requests in flight, %.0f s grace", self.in_flight, self.grace_s)

    def abort(self) -> None:
        self.begin()
        if not self.aborted.is_set():
            logger.info("ending %d requests still in flight", self.in_flight)
            self.aborted.set()
            for callback in list(self._on_abort.values()):
                callback()

    async def run(self) -> None:
        """Drain, then abort; returns once nothing is in flight (or the flush time is up)."""
        self.begin()
        deadline = time.monotonic() + self.grace_s
        while self.in_flight and time.monotonic() < deadline and not self.aborted.is_set():
            await asyncio.sleep(0.05)
        self.abort()
        flush_until = time.monotonic() + ABORT_FLUSH_S
        while self.in_flight and time.monotonic() < flush_until:
            await asyncio.sleep(0.05)


class GracefulServer(uvicorn.Server):
    """uvicorn's server with :class:`Drain` in front of its own shutdown."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._signals = 0

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: Any) -> None:
        # A signal handler: do nothing here but hand the work to the event loop.
        self._signals += 1
        loop = self._loop
        if loop is None or not self.started or self._signals >= 3:
            super().handle_exit(sig, frame)  # not serving yet, or asked three times: uvicorn's own way
            return
        loop.call_soon_threadsafe(self._on_signal)

    def _on_signal(self) -> None:
        if self._drain_task is None:
            self._drain_task = asyncio.ensure_future(self._drain_then_exit())
        else:
            self.drain.abort()  # asked again: end the streams now

    async def _drain_then_exit(self) -> None:
        started = time.monotonic()
        with contextlib.suppress(Exception):
            await self.drain.run()
        logger.info("drained in %.1f s; shutting down", time.monotonic() - started)
        self.should_exit = True
