"""Continuous batching for Orpheus: one step of the worker thread advances every running sequence.

A step (called by :class:`engines.worker.BatchWorker` with the active requests):

1. admit: text that arrived since the last step becomes segments; every request's earliest
   unfinished segment gets a batch row (prefill, first token);
   spare rows go to later segments of the same requests (up to ``orpheus_parallel_segments``),
   and are taken back from them when a new request needs a row;
2. decode: one batched forward of the LM over all rows, with a KV cache, and per-row sampling;
3. audio: completed frames go to each segment's SNAC stream; the windows ready in all streams are
   decoded in one batched codec call and emitted, in order, to each request's own queue;
4. retire: rows whose segment ended (end of speech or token budget) leave the batch.

Requests the worker drops (client gone, failure) leave through :meth:`release` before the next
step. The model is only ever touched from the worker thread.

Why not transformers' ``ContinuousBatchingManager``: it samples the whole batch with one
``torch.multinomial`` (no per-request generator, so a seed cannot make a request reproducible
whatever else is batched with it), its logits processors cannot express "the next slot's 4,096
audio ids", it runs its own thread and queues next to our worker's, and it computes the full
156,940-wide LM head that the audio-only head here skips.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache

from engines.base import PcmChunk
from engines.orpheus.batch_state import DecodeBatch, cache_keyword
from engines.orpheus.codec import SnacCodec
from engines.orpheus.requests import OrpheusRequest, Segment
from engines.orpheus.sampling import AudioHead, columns_to_tokens, sample_columns
from engines.orpheus.snac_stream import PlannedWindow
from engines.orpheus.tokens import CODEBOOK_SIZE, SAMPLE_RATE, prompt_ids
from engines.worker import Job

logger = logging.getLogger(__name__)


@dataclass
class _Row:
    job: Job[OrpheusRequest]
    segment: Segment


class OrpheusScheduler:
    def __init__(self, model: Any, tokenizer: Any, codec: SnacCodec, *, max_rows: int, parallel_segments: int) -> None:
        self.model = model
        self.decoder = model.get_decoder()
        self.cache_kw = cache_keyword(self.decoder)
        self.head = AudioHead(model.get_output_embeddings().weight)
        self.device = self.head.audio_weight.device
        self.tokenizer = tokenizer
        self.codec = codec
        self.max_rows = max_rows
        self.parallel_segments = parallel_segments
        self.batch = DecodeBatch(self.device)
        self.rows: dict[int, _Row] = {}  # sequence id -> owner
        self._ids = itertools.count()
        self._stats_lock = threading.Lock()
        self._stats: dict[str, Any] = {
            "decode_steps": 0,
            "tokens_generated": 0,
            "prefills": 0,
            "sequences_evicted": 0,
            "frames_decoded": 0,
            "frames_invalid": 0,
            "codec_calls": 0,
            "codec_windows": 0,
            "max_lm_batch_size_seen": 0,
            "lm_batch_size_histogram": collections.Counter(),
        }
        self._audio_samples = 0  # emitted to requests
        self._step_seconds = 0.0  # spent in step()
        self._timed_from = 0.0  # perf_counter() up to which step time is already counted

    # -- worker entry points ------------------------------------------------------------------
    def step(self, jobs: Sequence[Job[OrpheusRequest]]) -> None:
        self._timed_from = time.perf_counter()
        try:
            with torch.inference_mode():
                self._admit(jobs)
                if len(self.batch):
                    self._decode()
                self._audio(jobs)
                self._retire()
        except BaseException:
            # The worker fails every job of this step; start from a clean batch for the next ones.
            self.rows.clear()
            self.batch = DecodeBatch(self.device)
            raise
        finally:
            self._count_time()

    def release(self, job: Job[OrpheusRequest]) -> None:
        """``on_leave``: the request is done or gone; free its rows now (worker thread)."""
        ids = [sid for sid, row in self.rows.items() if row.job is job]
        for sid in ids:
            self.rows.pop(sid).segment.generating = False
        if ids:
            with torch.inference_mode():
                self.batch.keep(list(self.rows))

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            stats = dict(self._stats)
            stats["lm_batch_size_histogram"] = dict(self._stats["lm_batch_size_histogram"])
            stats["audio_seconds"] = round(self._audio_samples / SAMPLE_RATE, 3)
            stats["synthesis_seconds"] = round(self._step_seconds, 3)
        stats["lm_rows"] = len(self.rows)
        return stats

    def _count_time(self) -> None:
        now = time.perf_counter()
        with self._stats_lock:
            self._step_seconds += now - self._timed_from
        self._timed_from = now

    def _count(self, **increments: int) -> None:
        with self._stats_lock:
            for key, value in increments.items():
                self._stats[key] += value

    # -- 1. admission -------------------------------------------------------------------------
    def _admit(self, jobs: Sequence[Job[OrpheusRequest]]) -> None:
        for job in jobs:
            job.state.absorb()
        admitted: list[_Row] = []
        free = self.max_rows - len(self.rows)
        for job in jobs:  # every request's head segment first, evicting look-ahead rows if needed
            head = job.state.head()
            if head is None or head.generating:
                continue
            if free == 0 and self._evict_one():
                free += 1
            if free == 0:
                break
            admitted.append(_Row(job, head))
            head.generating = True
            free -= 1
        progress = True
        while free > 0 and progress:  # then later segments, one per request per round
            progress = False
            for job in jobs:
                segment = job.state.waiting()
                if free == 0 or segment is None or len(job.state.generating()) >= self.parallel_segments:
                    continue
                admitted.append(_Row(job, segment))
                segment.generating = True
                free -= 1
                progress = True
        if admitted:
            self._prefill(admitted)

    def _evict_one(self) -> bool:
        """Take a row back from a look-ahead segment (none of its audio has left yet)."""
        for sid in sorted(self.rows, reverse=True):
            row = self.rows[sid]
            head = row.job.state.head()
            if head is not None and row.segment.index > head.index:
                del self.rows[sid]
                row.segment.reset()
                self.batch.keep(list(self.rows))
                self._count(sequences_evicted=1)
                return True
        return False

    def _prefill(self, admitted: list[_Row]) -> None:
        ids, caches, lengths, firsts = [], [], [], []
        for row in admitted:
            segment, request = row.segment, row.job.state
            segment.start()
            if segment.prompt is None:
                segment.prompt = prompt_ids(self.tokenizer, request.voice, segment.text)
            cache = DynamicCache()
            inputs = torch.tensor([segment.prompt], dtype=torch.long, device=self.device)
            out = self.decoder(input_ids=inputs, use_cache=True, **{self.cache_kw: cache})
            slot = torch.zeros(1, dtype=torch.long, device=self.device)
            nothing_seen = torch.zeros(1, CODEBOOK_SIZE, dtype=torch.bool, device=self.device)
            column = self._sample(out.last_hidden_state[:, -1], [row], slot, nothing_seen)
            segment.accept(int(columns_to_tokens(column, slot).item()), request.params.max_tokens)
            self._count(prefills=1, tokens_generated=1)
            if segment.done:  # ended at once: it never needs a row
                segment.generating = False
                continue
            sid = next(self._ids)
            self.rows[sid] = row
            ids.append(sid)
            caches.append(cache)
            lengths.append(len(segment.prompt))
            firsts.append(int(column))
        self.batch.merge(ids, caches, lengths)
        for offset, column in enumerate(firsts):
            self.batch.remember(len(self.batch) - len(firsts) + offset, 0, column)

    # -- 2. decode ----------------------------------------------------------------------------
    def _sample(self, hidden: torch.Tensor, rows: list[_Row], slots: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        """Sampled columns (see :func:`sample_columns`), one uniform from each row's own generator."""
        params = [row.job.state.params for row in rows]

        def as_tensor(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32, device=self.device)

        uniforms = [float(torch.rand((), generator=row.segment.generator)) for row in rows]
        return sample_columns(
            self.head.scores(hidden, slots),
            seen,
            as_tensor([p.temperature for p in params]),
            as_tensor([p.top_p for p in params]),
            as_tensor([p.repetition_penalty for p in params]),
            as_tensor(uniforms),
        )

    def _decode(self) -> None:
        rows = [self.rows[sid] for sid in self.batch.ids]
        segments = [r.segment for r in rows]
        slots = torch.tensor([s.next_slot for s in segments], dtype=torch.long, device=self.device)
        inputs = torch.tensor([[s.tokens[-1]] for s in segments], dtype=torch.long, device=self.device)
        out = self.decoder(
            input_ids=inputs,
            attention_mask=self.batch.attention_mask(),
            position_ids=self.batch.lengths[:, None],
            use_cache=True,
            **{self.cache_kw: self.batch.cache},
        )
        seen = self.batch.seen[torch.arange(len(rows), device=self.device), slots]
        columns = self._sample(out.last_hidden_state[:, -1], rows, slots, seen)
        self.batch.advance(slots, columns)
        for row, token in zip(rows, columns_to_tokens(columns, slots).tolist()):
            row.segment.accept(token, row.job.state.params.max_tokens)
        with self._stats_lock:
            self._stats["decode_steps"] += 1
            self._stats["tokens_generated"] += len(rows)
            self._stats["lm_batch_size_histogram"][len(rows)] += 1
            self._stats["max_lm_batch_size_seen"] = max(self._stats["max_lm_batch_size_seen"], len(rows))

    # -- 3. audio -----------------------------------------------------------------------------
    def _audio(self, jobs: Sequence[Job[OrpheusRequest]]) -> None:
        planned: list[tuple[Segment, PlannedWindow]] = []
        for job in jobs:
            for segment in job.state.segments:
                window = segment.windows.next_window(final=segment.done)
                if window is not None:
                    planned.append((segment, window))
        if planned:
            audio = self.codec.decode([p.window for _, p in planned])
            self._count(
                codec_calls=len({len(p.window.frames) for _, p in planned}),
                codec_windows=len(planned),
                frames_decoded=sum(p.emit_to - p.emit_from for _, p in planned),
            )
            for (segment, window), samples in zip(planned, audio):
                segment.windows.mark_emitted(window)
                segment.chunks.append(np.ascontiguousarray(window.emitted_samples(samples), dtype=np.float32))
        # Counters first: a request that sees its audio (and its end) also sees them in stats().
        outputs = [(job, job.state.drain()) for job in jobs]
        with self._stats_lock:
            self._audio_samples += sum(chunk.size for _, chunks in outputs for chunk in chunks)
        self._count_time()
        for job, chunks in outputs:
            for chunk in chunks:
                job.emit(PcmChunk(chunk, SAMPLE_RATE, job.state.samples_emitted))
                job.state.samples_emitted += chunk.size
            if job.state.complete:
                self._count(frames_invalid=sum(s.invalid_frames for s in job.state.segments))
                job.finish()

    # -- 4. retire ----------------------------------------------------------------------------
    def _retire(self) -> None:
        ended = [sid for sid, row in self.rows.items() if row.segment.done]
        for sid in ended:
            self.rows.pop(sid).segment.generating = False
        if ended:
            self.batch.keep(list(self.rows))
