"""Continuous batching for Orpheus on transformers: one step of the worker thread advances every sequence.

A step (called by :class:`engines.worker.BatchWorker` with the active requests):

1. decode: one batched forward over the rows of the slot cache (slot_cache.py), sampling on the
   device (sampling.py), and an asynchronous copy of the new tokens to the host;
2. collect: the tokens of the *previous* step (already copied while this step's kernels queue up)
   go to their segments; completed frames become SNAC windows handed to the codec stage
   (codec_stage.py), which decodes them on its own thread and emits the audio;
3. retire: rows whose segment ended (end of speech, token budget) leave the cache;
4. admit: text that arrived becomes segments; every request's earliest unfinished segment gets a
   row (prefill, first token), spare rows go to later segments of the same requests (up to
   ``orpheus_parallel_segments``) and are taken back when a new request needs one.

The host reads the device once per step, one step late, so on a GPU the next step is queued before
the host waits: no ``.item()``/``.tolist()`` per token, no per-row random draws, and no host-to-
device copies except at joins. A row that ended is decoded once more before it leaves (that token
is ignored). With ``cuda_graphs`` the decode runs as a CUDA graph per bucket of rows and width,
every bucket captured at load (:meth:`OrpheusScheduler.capture_graphs`), none while serving.

Requests the worker drops (client gone, failure) leave through :meth:`release` before the next
step. The model is only ever touched from the worker thread.

Failure isolation: whatever concerns one request (its text, prompt and prefill, its tokens and
frames, its audio) runs under :meth:`_isolated`, so a failure there fails that request alone and
the others' rows go on untouched. Only the batched decode forward is shared; if it raises, the
worker fails the step's requests and the cache starts empty. A request whose reader lags
(:func:`lagging`) gets no new rows until it catches up; rows it holds finish their segment.

Priority: the worker hands the step its jobs with a parked job left out (engines/worker.py: a
higher-priority request took its place). Its rows leave at once, keeping the tokens they had
collected; when the job returns, each segment is prefilled with its prompt *and* those tokens and
its sampler resumes at the same counter, so the audio goes on where it stopped (as vLLM's
preemption by recomputation). Head segments are admitted in priority order.

Why not transformers' ``ContinuousBatchingManager``: it samples the whole batch with one
``torch.multinomial`` (no per-request seed), its logits processors cannot express "the next slot's
4,096 audio ids", and it runs its own thread and queues next to our worker's.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from engines.errors import InternalError, TTSError
from engines.job import Job
from engines.orpheus import decode_graphs
from engines.orpheus.codec_stage import CodecItem, CodecStage
from engines.orpheus.requests import OrpheusRequest, Segment, lagging
from engines.orpheus.sampling import AudioHead, columns_to_tokens, counter_uniforms, sample_columns
from engines.orpheus.slot_cache import SlotCache
from engines.orpheus.tokens import AUDIO_BASE, CODEBOOK_SIZE, FRAME_TOKENS, prompt_ids

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Row:
    job: Job[OrpheusRequest]
    segment: Segment
    budget: int  # tokens this row may sample (max_tokens, or what fits in the cache)
    length: int = 0  # tokens in its KV cache row (host-side count; never read from the device)
    sampled: int = 0  # tokens sampled, including those not yet collected
    dropped: bool = False  # released or evicted: tokens still in flight for it are ignored


class OrpheusScheduler:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        codec: CodecStage,
        *,
        max_rows: int,
        parallel_segments: int,
        max_len: int = 8192,
        cuda_graphs: bool = False,
    ) -> None:
        self.cache = SlotCache(model, max_rows, max_len)
        self.head = AudioHead(model.get_output_embeddings().weight)
        self.device = self.cache.device
        self.tokenizer = tokenizer
        self.codec = codec
        self.max_rows = max_rows
        self.parallel_segments = parallel_segments
        self.rows: list[_Row] = []  # cache row i belongs to rows[i]
        # Tokens copied to the host and not yet read: (rows, host tensor, CUDA event or None).
        self._inflight: list[tuple[list[_Row], torch.Tensor, Any]] = []
        cuda = self.device.type == "cuda"
        self._pin = cuda
        # cuda_graphs on CPU runs the same padded shapes without capture (so tests cover them).
        # Captured by capture_graphs() at load, never while serving (decode_graphs.py says why).
        self.graphs: decode_graphs.DecodeGraphs | None = None
        if cuda_graphs:
            c = self.cache
            state = [c.lengths, c.last, c.slots, c.counters, c.seen]
            capture = decode_graphs.graph_capture_for(self.device)
            self.graphs = decode_graphs.DecodeGraphs(self._decode_rows, max_rows, max_len, capture=capture, state=state)
        self._stats_lock = threading.Lock()
        self._stats: dict[str, Any] = {
            "decode_steps": 0,
            "tokens_generated": 0,
            "prefills": 0,
            "sequences_evicted": 0,
            "sequences_parked": 0,
            "frames_invalid": 0,
            "max_lm_batch_size_seen": 0,
            "lm_batch_size_histogram": collections.Counter(),
        }
        self._step_seconds = 0.0  # spent in step()

    def capture_graphs(self) -> None:
        """With ``cuda_graphs``: capture every bucket now (at load, before the codec thread starts)."""
        if self.graphs is not None:
            with torch.inference_mode():
                self.graphs.capture_all()

    # -- worker entry points ------------------------------------------------------------------
    def step(self, jobs: Sequence[Job[OrpheusRequest]]) -> None:
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                self._park_absent(jobs)
                launched = self._decode() if self.rows else None
                self._collect(keep_last=launched is not None)
                self._retire()
                self._admit(jobs)
                self._flush(jobs)
        except BaseException:
            # The worker fails every job of this step; start from an empty cache for the next ones.
            for row in self.rows:
                row.dropped = True
            self.rows.clear()
            self._inflight.clear()
            raise
        finally:
            with self._stats_lock:
                self._step_seconds += time.perf_counter() - started

    def release(self, job: Job[OrpheusRequest]) -> None:
        """``on_leave``: the request is done or gone; free its rows now (worker thread)."""
        with torch.inference_mode():
            self._remove([i for i, row in enumerate(self.rows) if row.job is job], drop=True)
        for segment in job.state.segments:
            segment.generating = False

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            stats = dict(self._stats)
            stats["lm_batch_size_histogram"] = dict(self._stats["lm_batch_size_histogram"])
            stats["synthesis_seconds"] = round(self._step_seconds, 3)
        stats["lm_rows"] = len(self.rows)
        stats["lm_rows_capacity"] = self.max_rows
        if self.graphs is not None:
            stats["cuda_graphs_captured"] = len(self.graphs.graphs)
            stats["cuda_graph_replays"] = self.graphs.replays
        return stats

    def _isolated(self, job: Job[OrpheusRequest], stage: str, fn: Any, *args: Any) -> bool:
        """Run one request's part of the step; a failure fails that request only."""
        try:
            fn(*args)
            return True
        except Exception as exc:
            logger.exception("orpheus: %s failed for one request", stage)
            job.fail(
                exc if isinstance(exc, TTSError) else InternalError("The server failed to synthesize this request.")
            )
            return False

    def _count(self, **increments: int) -> None:
        with self._stats_lock:
            for key, value in increments.items():
                self._stats[key] += value

    # -- sampling, on the device --------------------------------------------------------------
    def _sample(self, hidden: torch.Tensor, rows: slice) -> None:
        """Sample the next token of cache rows ``rows`` into ``cache.last``; advance their state."""
        c = self.cache
        slots = c.slots[rows]
        index = torch.arange(hidden.shape[0], device=self.device)
        seen = c.seen[rows]
        columns = sample_columns(
            self.head.scores(hidden, slots),
            seen[index, slots],
            c.temperature[rows],
            c.top_p[rows],
            c.penalty[rows],
            counter_uniforms(c.seeds[rows], c.counters[rows]),
        )
        codes = columns.clamp(max=CODEBOOK_SIZE - 1)  # end_of_speech is not a code: it marks nothing
        seen[index, slots, codes] = seen[index, slots, codes] | (columns < CODEBOOK_SIZE)
        c.last[rows] = columns_to_tokens(columns, slots)
        c.slots[rows] = (slots + 1) % FRAME_TOKENS
        c.counters[rows] += 1

    def _decode_rows(self, rows: int, width: int) -> None:
        """Decode and sample rows ``0 .. rows-1`` (a CUDA graph captures exactly this)."""
        self._sample(self.cache.decode(rows, width), slice(0, rows))

    def _copy_out(self, rows: list[_Row], start: int) -> None:
        """Queue a copy of the tokens just sampled for ``rows`` (cache rows from ``start``) to the host."""
        tokens = self.cache.last[start : start + len(rows)]
        host = torch.empty(len(rows), dtype=torch.long, pin_memory=self._pin)
        host.copy_(tokens, non_blocking=self._pin)
        self._inflight.append((list(rows), host, copy_event(self.device) if self._pin else None))

    # -- 1. decode ----------------------------------------------------------------------------
    def _decode(self) -> bool:
        n = len(self.rows)
        width = max(row.length for row in self.rows) + 1
        if self.graphs is not None:
            self.graphs.run(n, width)
        else:  # the same attention width as the graphs' (see decode_graphs.WIDTH_STEP)
            self._decode_rows(n, decode_graphs.padded_width(width, self.cache.max_len))
        for row in self.rows:
            row.length += 1
            row.sampled += 1
        self._copy_out(self.rows, 0)
        with self._stats_lock:
            self._stats["decode_steps"] += 1
            self._stats["lm_batch_size_histogram"][n] += 1
            self._stats["max_lm_batch_size_seen"] = max(self._stats["max_lm_batch_size_seen"], n)
        return True

    # -- 2. collect ---------------------------------------------------------------------------
    def _collect(self, keep_last: bool) -> None:
        """Read every copy but the one just queued (``keep_last``): the host waits for the previous step only."""
        ready = self._inflight[:-1] if keep_last else self._inflight
        self._inflight = self._inflight[-1:] if keep_last else []
        if not ready:
            return
        items: list[CodecItem] = []
        accepted = 0
        for rows, host, event in ready:
            if event is not None:
                event.synchronize()  # that copy only: the step queued after it keeps the GPU busy
            for row, token in zip(rows, host.tolist()):
                segment = row.segment
                if row.dropped or segment.done or row.job.finished:
                    continue  # evicted or released since, a token after its end, or its request failed
                if not self._isolated(row.job, "collect", self._accept, row, token, items):
                    row.dropped = True
                    continue
                accepted += 1
        self._count(tokens_generated=accepted)
        self.codec.submit(items)

    def _accept(self, row: _Row, token: int, items: list[CodecItem]) -> None:
        segment = row.segment
        segment.accept(token, row.budget)
        while (window := segment.windows.next_window(final=segment.done)) is not None:
            items.append(CodecItem(row.job, segment, window))
        if segment.done:
            segment.generating = False
            self._count(frames_invalid=segment.invalid_frames)

    # -- 3. retire ----------------------------------------------------------------------------
    def _retire(self) -> None:
        # A failed request's rows go with their tokens in flight; a finished row's last token still counts.
        self._remove([i for i, row in enumerate(self.rows) if row.dropped or row.job.finished], drop=True)
        self._remove([i for i, row in enumerate(self.rows) if row.segment.done or row.sampled >= row.budget])

    def _remove(self, indices: list[int], drop: bool = False) -> None:
        """Rows leave; the last row moves into each hole, so rows stay ``0 .. n-1``.

        ``drop``: their tokens still in flight are ignored (else a row that used up its budget
        still delivers its last tokens).
        """
        for index in sorted(indices, reverse=True):
            last = len(self.rows) - 1
            self.rows[index].dropped |= drop
            self.cache.move_row(last, index, self.rows[last].length)
            self.rows[index] = self.rows[last]
            self.rows.pop()

    # -- 0. parking ---------------------------------------------------------------------------
    def _park_absent(self, jobs: Sequence[Job[OrpheusRequest]]) -> None:
        """Rows of jobs the worker parked leave now; their segments keep what they generated."""
        present = {id(job) for job in jobs}
        parked = [i for i, row in enumerate(self.rows) if id(row.job) not in present and not row.job.finished]
        for index in parked:
            self.rows[index].segment.generating = False  # tokens in flight are dropped and sampled again
        if parked:
            self._remove(parked, drop=True)
            self._count(sequences_parked=len(parked))

    # -- 4. admission -------------------------------------------------------------------------
    def _admit(self, jobs: Sequence[Job[OrpheusRequest]]) -> None:
        for job in jobs:
            self._isolated(job, "absorb", job.state.absorb)
        jobs = sorted(jobs, key=lambda job: job.priority)  # stable: arrival order within a class
        # Failed requests take nothing; a lagging reader's request waits for rows until it catches up.
        jobs = [job for job in jobs if not job.finished and not lagging(job)]
        admitted: list[tuple[Job[OrpheusRequest], Segment]] = []
        free = self.max_rows - len(self.rows)
        for job in jobs:  # every request's head segment first, evicting look-ahead rows if needed
            head = job.state.head()
            if head is None or head.generating:
                continue
            if free == 0 and self._evict_one():
                free += 1
            if free == 0:
                break
            admitted.append((job, head))
            head.generating = True
            free -= 1
        progress = True
        while free > 0 and progress:  # then later segments, one per request per round
            progress = False
            for job in jobs:
                segment = job.state.waiting()
                if free == 0 or segment is None or len(job.state.generating()) >= self.parallel_segments:
                    continue
                admitted.append((job, segment))
                segment.generating = True
                free -= 1
                progress = True
        if admitted:
            self._prefill(admitted)

    def _evict_one(self) -> bool:
        """Take a row back from a look-ahead segment (none of its audio has left yet)."""
        for index in range(len(self.rows) - 1, -1, -1):
            row = self.rows[index]
            head = row.job.state.head()
            if head is not None and row.segment.index > head.index:
                self._remove([index], drop=True)
                with row.job.state.lock:
                    row.segment.reset()
                self._count(sequences_evicted=1)
                return True
        return False

    def _prefill(self, admitted: list[tuple[Job[OrpheusRequest], Segment]]) -> None:
        start = len(self.rows)
        for job, segment in admitted:
            if not self._isolated(job, "prefill", self._prefill_one, job, segment):
                segment.generating = False  # the row index it used is taken by the next one
        if len(self.rows) > start:
            self._copy_out(self.rows[start:], start)

    def _prefill_one(self, job: Job[OrpheusRequest], segment: Segment) -> None:
        request = job.state
        if segment.prompt is None:
            segment.prompt = prompt_ids(self.tokenizer, request.voice, segment.text)
        room = (self.cache.max_len - len(segment.prompt)) // FRAME_TOKENS * FRAME_TOKENS
        budget = min(request.params.max_tokens, room)
        if budget < FRAME_TOKENS:  # cannot hold one frame: the segment ends silent
            logger.warning("orpheus: a %d-token prompt leaves no room in the KV cache", len(segment.prompt))
            segment.done, segment.generating = True, False
            return
        p = request.params
        done = list(segment.tokens)  # a parked segment resumes after the tokens it had
        ids = segment.prompt + done
        row = _Row(job, segment, budget, length=len(ids), sampled=len(done) + 1)
        index = len(self.rows)
        self.cache.reset_row(
            index, seed=segment.seed, temperature=p.temperature, top_p=p.top_p, penalty=p.repetition_penalty
        )
        if done:
            self.cache.resume_row(index, done, AUDIO_BASE)
        self._sample(self.cache.prefill(index, ids), slice(index, index + 1))
        self.rows.append(row)
        self._count(prefills=1)

    # -- audio --------------------------------------------------------------------------------
    def _flush(self, jobs: Sequence[Job[OrpheusRequest]]) -> None:
        for job in jobs:
            self._isolated(job, "flush", job.state.flush, job, self.codec.count_audio)


def copy_event(device: torch.device) -> Any:
    """An event after the copy just queued on ``device``'s current stream (where a non-blocking copy
    from a tensor on cuda:N runs), not on the thread's current device's: waiting on it then waits
    for that copy, never returns early with stale tokens."""
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(device))
    return event
