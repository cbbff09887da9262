"""Per-request state: the text segments, their token and frame streams, and in-order output.

A request's text is split into segments as it arrives; each segment is generated as its own
sequence (several may run at once) and decoded as its own SNAC stream. New segments come from the
event loop through a thread-safe inbox that the worker absorbs at the start of each step, so a
request admits text while it is already speaking. Audio leaves strictly in segment order: chunks
of a later segment wait in its buffer until every earlier segment has been emitted in full. Every
segment's end, and every segment's start but the first, gets a short raised-cosine fade, so joins
never click and the audio does not depend on when the next segment's text arrived.

Two threads touch a request: the LM (scheduler or vLLM driver) generates tokens and hands windows
to the codec stage, and the codec stage hands decoded audio back. Audio leaves through
:meth:`OrpheusRequest.flush`, under the request's lock, from whichever thread last changed it.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engines.audio import fade
from engines.base import PcmChunk
from engines.orpheus.sampling import SamplingParams, derive_seed
from engines.orpheus.snac_stream import PlannedWindow, StreamWindows, WindowConfig
from engines.orpheus.tokens import END_OF_SPEECH, FRAME_TOKENS, SAMPLE_RATE, SAMPLES_PER_FRAME, frame_codes

if TYPE_CHECKING:
    from engines.job import Job
    from engines.orpheus.adapters import Adapter


@dataclass
class Segment:
    """One text segment: a sequence in the LM batch while generating, then a finished stream."""

    index: int
    text: str
    seed: int  # sampling seed; the codec's noise seed is derived from it
    windows: StreamWindows
    prompt: list[int] | None = None
    tokens: list[int] = field(default_factory=list)  # audio tokens generated so far
    generating: bool = False  # holds a row of the decode batch (or a vLLM sequence)
    done: bool = False  # end of speech or token budget reached
    invalid_frames: int = 0
    chunks: collections.deque[np.ndarray] = field(default_factory=collections.deque)
    started_output: bool = False
    epoch: int = 0  # bumped on reset, so audio of windows decoded before an eviction is dropped

    @property
    def next_slot(self) -> int:
        return len(self.tokens) % FRAME_TOKENS

    @property
    def finished(self) -> bool:
        """Generated and decoded to the last frame (its chunks may still wait for earlier segments)."""
        return self.done and self.windows.emitted == self.windows.received

    def reset(self) -> None:
        """Forget all progress (the segment was evicted before any of its audio left). Under the lock."""
        self.windows = StreamWindows(self.windows.config, self.windows.noise_seed)
        self.tokens.clear()
        self.chunks.clear()
        self.generating = self.done = False
        self.invalid_frames = 0
        self.epoch += 1

    def accept(self, token: int, max_tokens: int) -> None:
        """Take one sampled token; complete frames go to the SNAC stream."""
        if token == END_OF_SPEECH:
            self.done = True
            return
        self.tokens.append(token)
        if len(self.tokens) % FRAME_TOKENS == 0:
            codes = frame_codes(self.tokens[-FRAME_TOKENS:])
            if codes is None:
                self.invalid_frames += 1  # only this frame is lost; the next starts cleanly
            else:
                self.windows.push(codes)
        if len(self.tokens) >= max_tokens:
            self.done = True


@dataclass
class OrpheusRequest:
    """``Job.state`` for Orpheus: everything the scheduler needs about one request."""

    voice: str
    params: SamplingParams
    seed: int
    windows: WindowConfig
    fade_samples: int
    segments: list[Segment] = field(default_factory=list)
    next_to_emit: int = 0
    samples_emitted: int = 0  # the next chunk's offset within the utterance
    inbox: collections.deque[str] = field(default_factory=collections.deque)  # texts from the event loop
    input_closed: bool = False  # event loop: no more texts will come
    input_complete: bool = False  # worker: closed, and every text absorbed
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # LM thread vs codec stage
    adapter: Adapter | None = None  # a LoRA voice (vLLM backend): its weights join every segment's sequence

    # -- event loop ---------------------------------------------------------------------------
    def add_texts(self, texts: list[str]) -> None:
        self.inbox.extend(texts)

    def close_input(self) -> None:
        self.input_closed = True  # after the last add_texts: absorb() relies on that order

    # -- worker thread ------------------------------------------------------------------------
    def absorb(self) -> None:
        """Turn texts that arrived since the last step into segments (the flag is read first)."""
        closed = self.input_closed
        while self.inbox:
            index = len(self.segments)
            segment_seed = derive_seed(self.seed, index)
            stream = StreamWindows(self.windows, noise_seed=derive_seed(segment_seed, 0x5AC))
            self.segments.append(Segment(index, self.inbox.popleft(), segment_seed, stream))
        self.input_complete = closed

    def has_work(self) -> bool:
        """Whether an LM step can do anything for this request.

        Not while it only waits for text or for the codec stage: the codec wakes the worker when the
        request completes, and the step that follows lets the worker retire it.
        """
        if self.inbox or (self.input_closed and not self.input_complete):
            return True
        return self.complete or any(not s.done for s in self.segments)

    def head(self) -> Segment | None:
        """The earliest segment still to generate: it must always hold a batch row."""
        return next((s for s in self.segments if not s.done), None)

    def waiting(self) -> Segment | None:
        """The earliest segment neither generating nor done."""
        return next((s for s in self.segments if not s.done and not s.generating), None)

    def generating(self) -> list[Segment]:
        return [s for s in self.segments if s.generating]

    @property
    def complete(self) -> bool:
        return self.input_complete and self.next_to_emit >= len(self.segments)

    def deliver(self, segment: Segment, epoch: int, planned: PlannedWindow, samples: np.ndarray) -> None:
        """The codec stage's result for one window of ``segment`` (dropped if it was reset since)."""
        with self.lock:
            if segment.epoch != epoch:
                return
            segment.windows.mark_emitted(planned)
            segment.chunks.append(np.ascontiguousarray(planned.emitted_samples(samples), dtype=np.float32))

    def flush(self, job: Any, count: Callable[[int], None] | None = None) -> None:
        """Emit every chunk that may leave, then finish the job if the request is complete.

        ``count`` sees the number of samples before the job does, so a client that has heard the
        audio also finds it in the stats.
        """
        with self.lock:
            if job.finished:
                return
            chunks = self.drain()
            if count is not None and chunks:
                count(sum(chunk.size for chunk in chunks))
            for chunk in chunks:
                job.emit(PcmChunk(chunk, SAMPLE_RATE, self.samples_emitted))
                self.samples_emitted += chunk.size
            if self.complete:
                job.finish()

    def drain(self) -> list[np.ndarray]:
        """Chunks that may leave now, in order, with fades where segments meet."""
        out: list[np.ndarray] = []
        while self.next_to_emit < len(self.segments):
            segment = self.segments[self.next_to_emit]
            while segment.chunks:
                chunk = segment.chunks.popleft()
                if segment.index > 0 and not segment.started_output:
                    chunk = fade(chunk, self.fade_samples, rising=True)
                segment.started_output = True
                if segment.finished and not segment.chunks:
                    chunk = fade(chunk, self.fade_samples, rising=False)
                if chunk.size:
                    out.append(chunk)
            if not segment.finished:
                break
            self.next_to_emit += 1
        return out


def lagging(job: Job[OrpheusRequest]) -> bool:  # both backends
    """Whether the request is ``max_buffered_s`` of audio ahead of its reader: start no new segment.

    Counts the audio waiting in the job for its reader (``job.backlogged``) and also the frames already
    generated whose audio has not reached the job yet (queued at the codec stage, or waiting behind an
    earlier segment): on a CPU the LM can outrun SNAC, and emitted audio alone let a request whose reader
    had stopped generate on through its whole input. Read on the thread that starts segments
    (the transformers worker, or the vLLM backend's loop).
    """
    if job.max_buffered_s is None:
        return False
    if job.backlogged:
        return True
    request = job.state
    # Only audio that can reach the reader without a new segment starting: frames of a later segment
    # waiting behind an earlier one not yet (re)started would otherwise pause the request for good.
    blocker = request.waiting()
    frames = sum(
        segment.windows.received for segment in request.segments if blocker is None or segment.index < blocker.index
    )
    pending = max(0, frames * SAMPLES_PER_FRAME - request.samples_emitted) / SAMPLE_RATE
    return job.buffered_seconds + pending >= job.max_buffered_s
