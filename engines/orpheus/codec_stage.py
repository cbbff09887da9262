"""The SNAC codec as its own stage: one thread decodes the windows that fall due in every stream.

The LM (the transformers scheduler or the vLLM driver) hands each window to :meth:`CodecStage.submit`
as soon as its frames exist and goes on generating; it never waits for the codec. The stage's
thread takes what has queued up, waits up to ``wait_ms`` for the batch to fill (to ``max_batch``),
decodes it with one SNAC call per window length (:meth:`SnacCodec.decode` groups them), and hands
each window's samples back to its request in queue order, so every stream's windows arrive in the
order they were planned. On CUDA it runs on a stream of its own so its kernels overlap the LM's.

Whether to batch follows the device (``batching``): on a GPU a batch costs little more than one
window; on CPU SNAC is compute-bound, so batching helps less and the choice is a measurement
(benchmarks/results/snac-cpu/). Without batching the stage decodes one window per call,
still off the LM's thread.

A failing batch is decoded again window by window, so a bad window fails its own request only.
:meth:`CodecStage.health` reports a dead thread or a decode that has run past the watchdog.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from engines.device import bind_thread
from engines.errors import InternalError, TTSError
from engines.histogram import SIZE_BUCKETS, Histogram
from engines.orpheus.codec import SnacCodec
from engines.orpheus.requests import OrpheusRequest, Segment
from engines.orpheus.snac_stream import PlannedWindow
from engines.orpheus.tokens import SAMPLE_RATE

logger = logging.getLogger(__name__)


@dataclass
class CodecItem:
    """One window of one segment, with where its audio goes."""

    job: Any  # engines.job.Job[OrpheusRequest]
    segment: Segment
    window: PlannedWindow
    epoch: int = -1  # the segment's epoch when planned; -1: take it now
    queued_at: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        if self.epoch < 0:
            self.epoch = self.segment.epoch

    @property
    def request(self) -> OrpheusRequest:
        return self.job.state


class CodecStage:
    def __init__(
        self,
        codec: SnacCodec,
        *,
        max_batch: int = 32,
        wait_ms: float = 2.0,
        on_complete: Callable[[Any], None] | None = None,
        watchdog_s: float | None = None,
    ) -> None:
        self.codec = codec
        self.watchdog_s = watchdog_s
        self._busy_since: float | None = None  # when the decode now running started
        self.windows_per_call = Histogram(SIZE_BUCKETS)
        self.max_batch = max(1, max_batch)  # 1: no batching
        self.batching = self.max_batch > 1
        self.wait_s = wait_ms / 1000.0 if self.batching else 0.0
        self._on_complete = on_complete  # e.g. wake the LM worker so it retires the finished job
        self._audio_samples = 0  # emitted to requests, by either thread (see count_audio)
        self._queue: collections.deque[CodecItem] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        device = codec.device
        self._stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self._stats_lock = threading.Lock()
        self._stats = {
            "codec_calls": 0,
            "codec_windows": 0,
            "codec_batches": 0,
            "frames_decoded": 0,
            "codec_seconds": 0.0,
            "codec_queue_wait_seconds": 0.0,
            "codec_max_windows_per_call": 0,
        }

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tts-orpheus-codec", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        # A hung or dead thread is not waited for (as the LM worker's): the worker's stop has failed
        # its jobs, and a restart should not sit out a long join on a decode that will not return.
        faulty = self.health() is not None
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(1 if faulty else 30)
        self._thread = None

    # -- any thread -------------------------------------------------------------------------------
    def submit(self, items: list[CodecItem]) -> None:
        if not items:
            return
        with self._cond:
            self._queue.extend(items)
            self._cond.notify()

    def count_audio(self, samples: int) -> None:
        """``OrpheusRequest.flush``'s counter: samples about to be emitted to a request."""
        with self._stats_lock:
            self._audio_samples += samples

    @property
    def queued(self) -> int:
        return len(self._queue)

    def health(self) -> str | None:
        if self._thread is not None and not self._thread.is_alive() and not self._stopping:
            return "the SNAC codec thread exited"
        busy = self._busy_since
        if self.watchdog_s and busy is not None and time.perf_counter() - busy > self.watchdog_s:
            return f"a SNAC decode made no progress for {self.watchdog_s:g} s"
        return None

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            stats = dict(self._stats)
            stats["audio_seconds"] = round(self._audio_samples / SAMPLE_RATE, 3)
        calls = max(1, stats["codec_calls"])
        stats["windows_per_codec_call"] = round(stats["codec_windows"] / calls, 2)
        stats["codec_ms_per_call"] = round(1000 * stats["codec_seconds"] / calls, 2)
        windows = max(1, stats["codec_windows"])
        stats["codec_queue_wait_ms"] = round(1000 * stats["codec_queue_wait_seconds"] / windows, 2)
        stats["codec_seconds"] = round(stats["codec_seconds"], 3)
        stats["codec_queue_wait_seconds"] = round(stats["codec_queue_wait_seconds"], 3)
        stats["codec_queued"] = len(self._queue)
        stats["codec_batching"] = self.batching
        stats["codec_compiled"] = self.codec.compiled is not None and self.codec.compiled.active
        if self.codec.compiled is not None and self.codec.compiled.fallback_reason:
            stats["codec_compile_fallback"] = self.codec.compiled.fallback_reason
        stats["codec_windows_per_call_histogram"] = self.windows_per_call.snapshot()
        return stats

    # -- the stage's thread -----------------------------------------------------------------------
    def _take(self) -> list[CodecItem] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            # Wait for company, at most wait_s after the oldest window became due.
            deadline = self._queue[0].queued_at + self.wait_s
            while len(self._queue) < self.max_batch and not self._stopping:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            count = min(self.max_batch, len(self._queue))
            return [self._queue.popleft() for _ in range(count)]

    def _run(self) -> None:
        bind_thread(self.codec.device)  # cuda:N: its stream, events and SNAC's workspaces on the codec's device
        while (batch := self._take()) is not None:
            try:
                self._decode(batch)
            except Exception:  # never the stage: _decode has already failed whom it had to
                logger.exception("orpheus codec stage: unexpected failure")
            finally:
                self._busy_since = None

    def _decode(self, batch: list[CodecItem]) -> None:
        live = [item for item in batch if not item.job.cancelled and not item.job.finished]
        if not live:
            return
        started = time.perf_counter()
        self._busy_since = started
        windows = [item.window.window for item in live]
        try:
            if self._stream is not None:
                with torch.cuda.stream(self._stream):
                    audio = self.codec.decode(windows)  # ends with .cpu(): syncs this stream only
            else:
                audio = self.codec.decode(windows)
        except Exception as exc:  # retried window by window: a bad window fails its own request only
            if len(live) > 1:
                logger.warning("orpheus codec stage: a batch of %d windows failed; retrying one by one", len(live))
                for item in live:
                    self._decode([item])
                return
            logger.exception("orpheus codec stage: a window failed")
            self._fail(live[0].job, exc)
            return
        elapsed = time.perf_counter() - started
        shapes = collections.Counter(len(w.frames) for w in windows if len(w.frames))
        calls = len(shapes)
        for windows_in_call in shapes.values():
            self.windows_per_call.observe(windows_in_call)
        with self._stats_lock:
            s = self._stats
            s["codec_calls"] += calls
            s["codec_batches"] += 1
            s["codec_windows"] += len(live)
            s["codec_max_windows_per_call"] = max(s["codec_max_windows_per_call"], *shapes.values(), 0)
            s["frames_decoded"] += sum(item.window.emit_to - item.window.emit_from for item in live)
            s["codec_seconds"] += elapsed
            s["codec_queue_wait_seconds"] += sum(started - item.queued_at for item in live)
        touched: dict[int, Any] = {}
        for item, samples in zip(live, audio):
            touched[id(item.job)] = item.job
            try:
                item.request.deliver(item.segment, item.epoch, item.window, samples)
            except Exception as exc:
                logger.exception("orpheus codec stage: delivery failed for one request")
                self._fail(item.job, exc)
        for job in touched.values():
            try:
                job.state.flush(job, self.count_audio)
            except Exception as exc:
                logger.exception("orpheus codec stage: flush failed for one request")
                self._fail(job, exc)
            if job.finished:
                self._completed(job)

    def _fail(self, job: Any, exc: Exception) -> None:
        job.fail(exc if isinstance(exc, TTSError) else InternalError("The server failed to decode audio."))
        self._completed(job)

    def _completed(self, job: Any) -> None:
        if self._on_complete is not None:
            try:
                self._on_complete(job)
            except Exception:
                logger.exception("orpheus codec stage: completion callback failed")


# On CPU SNAC's cost per frame was lowest at 2 windows per call and rose beyond (a shared 2-core
# machine: 439 ms a frame at 2, 514 at 1, 770 at 4, 845 at 8; benchmarks/results/snac-cpu/, where
# `python -m benchmarks.snac_bench` measures it again), so CPU batches stop there unless forced on.
CPU_AUTO_MAX_BATCH = 2


def resolve_batching(setting: str, device: torch.device | str, max_batch: int) -> int:
    """The most windows per codec batch: ``off`` 1, ``on`` ``max_batch``, ``auto`` by device."""
    if setting == "off":
        return 1
    if setting == "on" or torch.device(device).type == "cuda":
        return max_batch
    return min(max_batch, CPU_AUTO_MAX_BATCH)
