"""Where one chunk's audio ends and the next one's begins: no silence the text did not ask for.

Kokoro frames every utterance with a boundary token at each end, and the model gives each some
frames of near-silence. The server cuts a request's text into segments (a short first one for fast
first audio), so a request of N segments would carry N leading and N trailing silences where the
same text spoken as one utterance (``KPipeline``) has one of each: 7-13% more audio for the same
words, heard as a pause at every join.

So the boundary frames come off at the joins: a chunk that is not its request's first loses its
leading boundary token's frames, and one that is not its last loses its trailing one's. The pause a
join keeps is the one the punctuation asks for: a segment cut at a sentence end keeps the frames
its final ``.`` or ``?`` token was given, as that token gets inside one utterance. The request's
first and last chunks keep the model's own leading and trailing silence.

The cut is at frame boundaries given by the predicted durations, so word timings move by whole
frames (see ``KokoroBatcher._emit``), and the batcher's edge fade keeps the new edges click-free.
A chunk is its request's last when the input had ended by the time its segment was phonemized
(the G2P feeder marks it; the worker never guesses from a queue another thread fills); a streamed
request whose input ends later keeps no trailing silence on its final chunk (less silence than the
model's, never more).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from engines.kokoro.requests import KokoroItem
from engines.kokoro.timestamps import SAMPLES_PER_FRAME

if TYPE_CHECKING:
    import torch

    from engines.kokoro.batched import Prosody


def boundary_frames(item: KokoroItem, durations: Sequence[int]) -> tuple[int, int]:
    """``(leading, trailing)`` frames to drop from ``item``'s audio, given its predicted durations.

    A chunk spoken with the text around it as context (``context.py``) starts with ``warm`` tokens of the
    earlier text, decoded only to warm the decoder up: dropped. Then comes the space after the earlier
    text, the join's pause as one utterance has it: kept. It trails with the space before the later
    text, which the next chunk leads with: dropped.
    """
    if len(durations) < 3 + item.warm:  # no phoneme between the boundary tokens: nothing to trim around
        return 0, 0
    if item.left_context:  # the earlier text's warm-up tokens go; the space after it stays
        lead = int(sum(durations[: item.warm]))
    else:
        lead = 0 if item.index == 0 else int(durations[0])
    tail = 0 if item.last else int(durations[-1])  # a last chunk has nothing after it
    return lead, tail


def trim_joins(item: KokoroItem, prosody: Prosody, audio: torch.Tensor) -> torch.Tensor:
    """``item``'s audio (1-D, 600 samples a frame) without the boundary frames at its joins."""
    lead, tail = boundary_frames(item, prosody.durations.tolist())
    return audio[lead * SAMPLES_PER_FRAME : audio.shape[0] - tail * SAMPLES_PER_FRAME]
