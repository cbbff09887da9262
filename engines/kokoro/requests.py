"""Per-request state of the Kokoro engine, shared by the event loop (G2P) and the worker thread.

The event loop appends phoneme chunks in order as G2P returns them; the worker takes one chunk per
request per step. The producer appends before it marks the input complete, and the worker reads
the flags before the queue, so a request is never finished while a chunk is still on its way.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

import torch

from engines.kokoro.timestamps import SAMPLE_RATE


@dataclass
class KokoroItem:
    """One phoneme chunk: one forward pass of one request."""

    index: int  # position within the request: seeds its vocoder noise
    input_ids: torch.Tensor  # [T] with the boundary tokens
    ref_s: torch.Tensor  # [1, 256] style vector for this length
    spans: list[tuple[str, int, int]] | None  # word spans for timestamps (English, when asked for)
    last: bool = False  # known, when it was queued, to be its request's final chunk (see joins.py)
    # With context (``context.py``): ``input_ids`` hold the text around the chunk too, and these are the
    # chunk's tokens in them: its leading token (the boundary, or the space before it), its phonemes, and
    # its trailing token (the space after it, or the boundary).
    keep: tuple[int, int] | None = None
    warm: int = 0  # tokens of the earlier text decoded first and cut off (context.py)
    left_context: bool = False  # its leading token is the space after earlier text, not a boundary

    @property
    def tokens(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass
class KokoroRequest:
    """``Job.state`` for Kokoro."""

    pack: torch.Tensor  # [510, 1, 256] voice (or mix)
    speed: float
    seed: int
    lang_code: str
    sample_rate: int  # output rate
    encoding: str  # output PCM encoding
    word_timestamps: bool
    chunks: collections.deque[KokoroItem] = field(default_factory=collections.deque)
    input_done: bool = False  # set once every segment's chunks are queued
    next_index: int = 0
    phonemes: int = 0  # phonemes and characters seen so far: the work bound (KokoroEngine.check_work)
    spoken: list[str] = field(default_factory=list)  # phonemes of the chunks queued: the next ones' context
    chars: int = 0
    samples_out: int = 0  # at the output rate: the next chunk's offset
    native_samples: int = 0  # at 24 kHz: where the next chunk starts, for word timings
    # The CPU schedule (engines/kokoro/schedule.py): the next chunk with its prosody, waiting for its
    # decoder turn, and when the first audio left (the listener's clock).
    prepared: Any = None
    first_audio_at: float | None = None

    @property
    def start_seconds(self) -> float:
        return self.native_samples / SAMPLE_RATE

    def generator(self, item: KokoroItem, device: torch.device) -> torch.Generator:
        """The vocoder noise of one chunk: a function of the seed and the chunk's place only."""
        return torch.Generator(device=device).manual_seed(self.seed + item.index)

    def exhausted(self) -> bool:
        """All input is phonemized and every chunk taken (worker thread; flag read before the queue)."""
        return self.input_done and not self.chunks and self.prepared is None

    def ready(self) -> bool:
        return bool(self.chunks) or self.input_done or self.prepared is not None


def new_item(request: KokoroRequest, phonemes: int, input_ids: torch.Tensor, spans: Any) -> KokoroItem:
    """Number a chunk (event loop, in text order) and pick its style vector by its input's length in phonemes,
    as KPipeline does."""
    item = KokoroItem(request.next_index, input_ids, request.pack[min(max(phonemes, 1), len(request.pack)) - 1], spans)
    request.next_index += 1
    return item
