"""Which prepared chunk the CPU decoder runs next.

On a CPU the decoder runs one item at a time and is most of a step's cost. A step that decoded the
next chunk of every ready request made a new request wait behind all of them: with one other
stream in progress, its first audio came after that stream's (long) segment. So the ``front``
policy splits the work finer: a step runs the text/prosody front for every ready request that has
no chunk prepared (one padded batch, cheap), then one *slice* of the decoder for the most urgent
prepared chunk (``BatchedKokoro.decode_stages``: the decoder blocks, then each upsampling and each
resblock of the vocoder; the largest slice is about a third of a chunk's decode), and ends. A new
arrival joins the next step, so it waits for at most one slice in progress, and its first chunk
then decodes ahead of the others. The most urgent chunk is:

1. a request's first chunk (its listener hears nothing yet), oldest request first;
2. then the stream whose listener, playing in real time from its first audio, runs out of audio
   soonest (earliest deadline first). A stream far ahead of its listener waits its turn while new
   requests start; one about to run dry goes before streams that are not.

Throughput is unchanged: the same decoder work runs, only its order moves (a step's overhead is
microseconds against slices of tens of milliseconds or more).

Priority comes first: a request of a better class (``SessionParams.priority``, lower first) is
decoded before the others, in the order above within its class. A prepared chunk passed over
gains one class every ``AGING_SLICES`` slices it waits, so lower classes still make progress.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engines.kokoro.timestamps import SAMPLE_RATE
from engines.kokoro.work import Work, buckets

AGING_SLICES = 50  # decoder slices a prepared chunk waits before it ranks one class higher

if TYPE_CHECKING:
    import torch

    from engines.job import Job
    from engines.kokoro.batched import Prosody
    from engines.kokoro.batched_vocoder import Stages
    from engines.kokoro.requests import KokoroRequest


class StepHost(Protocol):
    """What this schedule uses of the batcher (KokoroBatcher), named here so neither imports the other."""

    max_batch_tokens: int
    device: torch.device
    forward: Any

    def _skip_cancelled(self, work: list[Work]) -> list[Work]: ...
    def _front(self, work: list[Work]) -> list[Prosody | None]: ...
    def _fail(self, entry: Work, stage: str) -> None: ...
    def _decode(self, work: list[Work], prosody: list[Prosody], audio: Any) -> None: ...


@dataclass
class Prepared:
    """A request's next chunk with its prosody, waiting for the decoder or part way through it."""

    entry: Work
    prosody: Prosody
    stages: Stages | None = None  # the decode in progress
    passed_over: int = 0  # slices decoded for others while this chunk waited (its aging credit)


def prepare_and_decode_one(batcher: StepHost, work: list[Work], jobs: Sequence[Job[KokoroRequest]]) -> None:
    """The ``front`` policy's step: front every newly taken chunk, then one decoder slice of the most urgent."""
    for bucket in buckets(work, batcher.max_batch_tokens, key=lambda w: w.item.tokens):
        bucket = batcher._skip_cancelled(bucket)
        for entry, prosody in zip(bucket, batcher._front(bucket) if bucket else []):
            if prosody is not None:  # a failed front has failed its request already
                entry.request.prepared = Prepared(entry, prosody)
    waiting = [job.state.prepared for job in jobs if job.state.prepared is not None and not job.cancelled]
    if not waiting:
        return
    task = min(waiting, key=lambda p: (p.entry.job.priority - p.passed_over // AGING_SLICES, urgency(p.entry)))
    for other in waiting:
        if other is not task:
            other.passed_over += 1
    request = task.entry.request
    try:
        if task.stages is None:
            generator = request.generator(task.entry.item, batcher.device)
            task.stages = batcher.forward.decode_stages([task.prosody], [generator])
        next(task.stages)
        return  # more slices to go: the next step picks again
    except StopIteration as done:
        audio = done.value
    except Exception:
        request.prepared = None
        batcher._fail(task.entry, "decoder")
        return
    request.prepared = None
    batcher._decode([task.entry], [task.prosody], audio)


def urgency(work: Work) -> tuple[int, float]:
    """Sort key: smaller decodes first (see the module docstring)."""
    request = work.request
    if request.first_audio_at is None:
        return 0, work.job.submitted_at
    return 1, request.first_audio_at + request.native_samples / SAMPLE_RATE
