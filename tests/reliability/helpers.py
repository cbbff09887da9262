"""Shared pieces of the reliability tests: the error shape, SSE parsing, a worker-backed fake engine."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import httpx
import numpy as np

from engines.base import Engine, PcmChunk, SessionParams, Voice
from engines.errors import InvalidVoice
from engines.job import Job
from engines.session import WorkerSession
from engines.text import TextSegmenter
from engines.worker import BatchWorker

MODEL = "hexgrad/Kokoro-82M"


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """Together's error shape, exactly: no 422, no FastAPI ``detail``, no traceback."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def sse_events(lines: list[str]) -> list[Any]:
    return [line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]) for line in lines if line.startswith("data: ")]


def sse_audio(events: list[Any]) -> bytes:
    return b"".join(base64.b64decode(e["b64"]) for e in events if isinstance(e, dict) and "b64" in e)


def wait_until(check, timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)


class WorkerEngine(Engine):
    """A minimal engine on a real :class:`BatchWorker`: each step emits 0.1 s of a tone per job.

    Faults are injected through ``hooks`` (``"step"``, ``"is_ready"``, ``"on_leave"``), each a callable
    given the job (or batch) that may raise or block. Used to test supervision without a model.
    """

    sample_rate = 24000

    def __init__(self, model_id: str = MODEL, settings: Any = None, *, chunks: int = 5, **worker: Any) -> None:
        super().__init__(model_id, settings)
        self.chunks = chunks
        self.worker_options = {"max_batch_size": 4, "max_wait_ms": 1, "max_queue_size": 16, **worker}
        self.hooks: dict[str, Any] = {}
        self.worker: BatchWorker | None = None
        self.loads = 0

    async def load(self) -> None:
        self.loads += 1
        self.worker = BatchWorker(
            "fake",
            self._step,
            on_leave=lambda job: self.hooks.get("on_leave", lambda j: None)(job),
            is_ready=lambda job: self.hooks.get("is_ready", lambda j: True)(job) and not job.backlogged,
            **self.worker_options,
        )
        self.worker.start()

    async def close(self) -> None:
        if self.worker is not None:
            await self.worker.stop()

    def health(self) -> str | None:
        return self.worker.health() if self.worker is not None else "not loaded"

    def voices(self) -> list[Voice]:
        return [Voice(id="alpha", name="alpha")]

    async def open_session(self, params: SessionParams) -> WorkerSession:
        if params.voice != "alpha":
            raise InvalidVoice(f"Unknown voice '{params.voice}'.")
        return _Session(self, params)

    def stats(self) -> dict[str, Any]:
        return self.worker.snapshot() if self.worker is not None else {}

    def _step(self, batch: list[Job]) -> None:
        self.hooks.get("step", lambda b: None)(batch)
        for job in batch:
            state = job.state
            n = 2400
            t = np.arange(state["i"] * n, (state["i"] + 1) * n) / 24000
            job.emit(PcmChunk((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 24000, state["i"] * n))
            state["i"] += 1
            if state["i"] >= state["n"]:
                job.finish()


class _Session(WorkerSession):
    def __init__(self, engine: WorkerEngine, params: SessionParams) -> None:
        super().__init__(params, TextSegmenter(first_chars=1000, max_chars=1000, min_chars=1))
        self._engine = engine

    def _submit(self) -> Job:
        return self._engine.worker.submit({"i": 0, "n": self._engine.chunks})

    async def _release(self, job: Job, segments: list[str]) -> None:
        pass

    async def _end_input(self, job: Job) -> None:
        self._engine.worker.wake()


async def drain(job: Job) -> list[Any]:
    return [item async for item in job.results()]


async def eventually(check, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
    return value
