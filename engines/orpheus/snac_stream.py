"""Which frames of a stream to decode next, so that every frame is emitted exactly once.

A SNAC frame's audio depends on codes up to 3 frames away on either side (the decoder's
receptive field). A window therefore decodes ``context`` already-emitted frames before the new
ones and ``lookahead`` not-yet-emitted frames after them, and only the new frames' samples leave.
With 3 and 3 the result equals a full-sequence decode to float precision; lookahead 2 differs by
about -67 dB, lookahead 1 by about -35 dB, and 0 is audibly wrong.

The peers' known bugs and how this avoids them:

* first frames dropped: the first window starts at frame 0 with no left context, and its new
  frames are emitted from sample 0;
* tail lost: :meth:`StreamWindows.next_window` with ``final=True`` emits every remaining frame
  (decoded with the left context, and no lookahead because none exists);
* duplicates: ``planned`` and ``emitted`` only move forward, by exactly the frames a window covers;
* an invalid code: the frame is rejected before it gets here (:func:`tokens.frame_codes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engines.orpheus.codec import Window
from engines.orpheus.tokens import FRAME_TOKENS, SAMPLES_PER_FRAME


@dataclass(frozen=True)
class WindowConfig:
    context: int = 3
    lookahead: int = 2
    first_chunk: int = 1
    chunk: int = 4

    @classmethod
    def from_settings(cls, settings: Any) -> WindowConfig:
        return cls(
            context=settings.snac_context_frames,
            lookahead=settings.snac_lookahead_frames,
            first_chunk=settings.snac_first_chunk_frames,
            chunk=settings.snac_chunk_frames,
        )


@dataclass(frozen=True)
class PlannedWindow:
    window: Window
    emit_from: int  # absolute frame index of the first emitted frame
    emit_to: int  # one past the last emitted frame

    def emitted_samples(self, audio: np.ndarray) -> np.ndarray:
        offset = (self.emit_from - self.window.start) * SAMPLES_PER_FRAME
        return audio[offset : offset + (self.emit_to - self.emit_from) * SAMPLES_PER_FRAME]


class StreamWindows:
    """Frames of one stream as they arrive, and the bookkeeping of which are already emitted."""

    def __init__(self, config: WindowConfig, noise_seed: int) -> None:
        self.config = config
        self.noise_seed = noise_seed
        self._frames: list[np.ndarray] = []
        self._base = 0  # absolute index of self._frames[0]; older frames are no longer needed
        # Windows are decoded by the codec stage (codec_stage.py) while the LM goes on, so what has
        # been handed to the codec (planned) runs ahead of what has come back (emitted).
        self.planned = 0  # frames covered by windows already handed out
        self.emitted = 0  # frames whose audio has come back from the codec
        self.received = 0

    def push(self, codes: np.ndarray) -> None:
        if codes.shape != (FRAME_TOKENS,):
            raise ValueError(f"a frame has {FRAME_TOKENS} codes, got shape {codes.shape}")
        self._frames.append(codes)
        self.received += 1

    def next_window(self, final: bool = False) -> PlannedWindow | None:
        """The next window to decode, or None if nothing can be emitted yet.

        Not final: wait until the chunk's frames and their lookahead have arrived. Final (end of
        speech or token budget): emit everything left, however little.
        """
        cfg = self.config
        pending = self.received - self.planned
        if final:
            if pending == 0:
                return None
            emit_to = self.received
        else:
            want = cfg.first_chunk if self.planned == 0 else cfg.chunk
            if pending < want + cfg.lookahead:
                return None
            emit_to = self.planned + want
        start = max(0, self.planned - cfg.context)
        end = min(self.received, emit_to + cfg.lookahead)
        frames = np.stack(self._frames[start - self._base : end - self._base])
        window = PlannedWindow(Window(frames, start, self.noise_seed), self.planned, emit_to)
        self.planned = emit_to
        # Frames that no future window can reach as context are dropped.
        drop = max(0, self.planned - cfg.context - self._base)
        del self._frames[:drop]
        self._base += drop
        return window

    def mark_emitted(self, planned: PlannedWindow) -> None:
        if planned.emit_from != self.emitted:
            raise RuntimeError("windows must be emitted in order, each once")
        self.emitted = planned.emit_to
