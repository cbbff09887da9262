"""A session whose synthesis runs as one job of an engine's :class:`BatchWorker`.

Text goes through a :class:`TextSegmenter` (in the request's ``segment`` mode); each settled
segment is handed to the engine (for Kokoro, to the G2P threads; for Orpheus, into the request's
segment list) and the worker turns it into audio. The job is submitted with the first segment,
not at open: a realtime client that has opened a session but said nothing yet holds no batch slot.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator
from typing import Any

from engines.base import EngineSession, SessionEnd, SessionEvent, SessionParams
from engines.errors import InvalidRequest
from engines.job import Job
from engines.text import TextSegmenter, session_segmenter


class WorkerSession(EngineSession):
    def __init__(self, params: SessionParams, segmenter: TextSegmenter) -> None:
        super().__init__(params)
        # The engine's limits in the session's mode (``segment``, text arriving in pieces or whole).
        self._segmenter = session_segmenter(params, segmenter)
        self._job: Job[Any] | None = None
        self._started = asyncio.Event()  # a job exists, or the session ended without one
        self._committed = False
        self._closed = False

    # -- what an engine provides ----------------------------------------------------------------
    @abc.abstractmethod
    def _submit(self) -> Job[Any]:
        """Create this request's state and submit it to the worker (raises Overloaded when full)."""

    @abc.abstractmethod
    async def _release(self, job: Job[Any], segments: list[str]) -> None:
        """Hand settled text segments to the job."""

    @abc.abstractmethod
    async def _end_input(self, job: Job[Any]) -> None:
        """No more segments will come: the job may finish once it has spoken the ones it has."""

    # -- the session contract -------------------------------------------------------------------
    async def feed(self, text: str) -> None:
        self._check_open()
        segments = self._segmenter.feed(text)
        if segments:
            await self._release(self._ensure_job(), segments)

    async def commit(self) -> None:
        self._check_open()
        self._committed = True
        segments = self._segmenter.finish()
        if segments or self._job is not None:
            job = self._ensure_job()
            if segments:
                await self._release(job, segments)
            await self._end_input(job)
        self._started.set()

    async def clear(self) -> None:
        self._check_open()
        self._segmenter.clear()

    async def events(self) -> AsyncIterator[SessionEvent]:
        await self._started.wait()
        if self._job is not None:
            async for item in self._job.results():
                yield item
        if not self._closed:
            yield SessionEnd()

    async def close(self) -> None:
        self._closed = True
        if self._job is not None:
            self._job.cancel()
        self._started.set()

    @property
    def job(self) -> Job[Any] | None:
        return self._job

    # -- helpers ----------------------------------------------------------------------------------
    def _ensure_job(self) -> Job[Any]:
        if self._job is None:
            self._job = self._submit()
            self._started.set()
        return self._job

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidRequest("This session is closed.")
        if self._committed:
            raise InvalidRequest("This session's input was already committed.")
